/**
 * Merge one or more PEFT LoRA adapters into an HF base model, in the order given, streaming one tensor
 * at a time from the base folder to the output folder.
 *
 * For each base weight, each adapter in turn either
 *  - replaces it with its modules_to_save copy (embed_tokens / lm_head trained in full — these may have
 *    a larger vocabulary than the base, as in Chinese-LLaMA-Alpaca), or
 *  - adds its LoRA product: W ← W + (alpha / r) · B·A.
 * Vocabulary growth is planned from tensor shapes before anything is written ("resize first"):
 * embed_tokens and lm_head are both grown to the final vocabulary (new rows = mean of the old rows,
 * see resizeRows) before later adapters apply to them, and config.json gets the new vocab_size.
 *
 * Refused before anything is written: an output that is an input (same real path), a base whose
 * config.json contradicts its weights (layers, hidden size, vocabulary, MLP width: the merged config
 * would describe another model). Refused while streaming (the output folder is then never created): a
 * NaN or ±Inf in a base weight, an adapter tensor, or a merged result, named by tensor.
 */
import { FolderExistsError, realTarget, refuseSpecialFile } from '@cllama/core';
import { LoraError } from './errors.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { HFCheckpoint, saveHFCheckpoint } from './hf-checkpoint.js';
import type { LlamaConfig } from './llama-config.js';
import { mergeLora, resizeRows } from './lora-math.js';
import { PeftAdapter } from './peft.js';
import type { NamedTensor, SaveDtype } from './safetensors.js';

const EMBED = 'model.embed_tokens.weight';
const LM_HEAD = 'lm_head.weight';
const VOCAB_WEIGHTS = new Set([EMBED, LM_HEAD]);

/** Files that make up an HF tokenizer folder (copied into a merged model). */
export const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json'];

export class MergeError extends LoraError {
  constructor(message: string) {
    super(message);
    this.name = 'MergeError';
  }
}

/** Throws a MergeError naming `what` if `data` holds a NaN or ±Inf. */
export function assertFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      throw new MergeError(
        `${what} holds a non-finite value (${v} at element ${i}); refusing to merge it — the model or adapter is broken (re-export it, or train it again)`,
      );
    }
  }
}

/** The base's config.json must describe its own weights; a merged config copied from it would otherwise lie. */
export function checkConfigAgainstWeights(base: HFCheckpoint, dir: string): void {
  const c = base.config;
  const bad = (what: string, configured: number, actual: number) =>
    new MergeError(`${dir}/config.json says ${what} = ${configured} but the weights have ${actual}; fix config.json or use the matching weights`);
  let layers = 0;
  for (const name of base.names()) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers !== c.numHiddenLayers) throw bad('num_hidden_layers', c.numHiddenLayers, layers);
  if (!base.has(EMBED)) throw new MergeError(`${dir} has no ${EMBED}; is it a LLaMA model folder?`);
  const [rows, hidden] = base.info(EMBED).shape;
  if (hidden !== c.hiddenSize) throw bad('hidden_size', c.hiddenSize, hidden);
  if (rows !== c.vocabSize) throw bad('vocab_size', c.vocabSize, rows);
  const gate = 'model.layers.0.mlp.gate_proj.weight';
  if (base.has(gate) && base.info(gate).shape[0] !== c.intermediateSize) throw bad('intermediate_size', c.intermediateSize, base.info(gate).shape[0]);
  const q = 'model.layers.0.self_attn.q_proj.weight';
  if (base.has(q) && base.info(q).shape.join() !== [c.hiddenSize, c.hiddenSize].join()) {
    throw new MergeError(
      `${dir}: ${q} is [${base.info(q).shape}] but config.json's hidden_size is ${c.hiddenSize}; fix config.json or use the matching weights`,
    );
  }
}

/**
 * Apply the adapters to one weight, in order. `source` is the base weight or a loader for it (not called
 * when an adapter replaces the weight whole, so a 7B embedding is never read just to be discarded).
 * `targetRows` is the vocabulary the plan settled on for embed_tokens / lm_head (ignored for others).
 */
export async function applyAdaptersToWeight(
  name: string,
  source: { shape: number[]; data: Float32Array } | (() => Promise<{ shape: number[]; data: Float32Array }>),
  adapters: readonly PeftAdapter[],
  targetRows?: number,
): Promise<{ shape: number[]; data: Float32Array }> {
  // Only the last adapter that saves this weight whole matters; everything before it is overwritten.
  let first = 0;
  for (let i = adapters.length - 1; i >= 0; i--) {
    if (adapters[i].fullTensors.has(name)) {
      first = i;
      break;
    }
  }
  const replacing = adapters[first]?.fullTensors.has(name) ?? false;
  let { shape, data } = replacing ? await adapters[first].readFull(name) : typeof source === 'function' ? await source() : source;
  assertFinite(data, replacing ? `${adapters[first].dir}: saved '${name}'` : `base weight '${name}'`);
  if (replacing && typeof source !== 'function' && source.shape.slice(1).join() !== shape.slice(1).join()) {
    throw new MergeError(`${adapters[first].dir}: saved '${name}' has shape [${shape}] but the model's is [${source.shape}]`);
  }
  if (targetRows !== undefined && VOCAB_WEIGHTS.has(name) && shape[0] < targetRows) {
    data = resizeRows(data, shape[0], shape[1], targetRows);
    shape = [targetRows, shape[1]];
  }
  for (const adapter of adapters.slice(replacing ? first + 1 : 0)) {
    const pair = adapter.loraPairs.get(name);
    if (!pair) continue;
    const [out, r] = pair.bShape;
    const inFeatures = pair.aShape[1];
    if (shape.length !== 2 || shape[0] !== out || shape[1] !== inFeatures) {
      throw new MergeError(
        `${adapter.dir}: LoRA for '${name}' is [${out}, ${inFeatures}] but the model's weight is [${shape}]; was the adapter trained on another base model?`,
      );
    }
    const { a, b } = await adapter.readPair(name);
    assertFinite(a, `${adapter.dir}: lora_A of '${name}'`);
    assertFinite(b, `${adapter.dir}: lora_B of '${name}'`);
    mergeLora(data, { a, b, r, inFeatures, outFeatures: out, scaling: adapter.scaling });
  }
  assertFinite(data, `merged '${name}' (finite inputs overflowed float32)`);
  return { shape, data };
}

/** Shape-only dry run: the rows embed_tokens / lm_head end up with after all adapters. */
function plannedRows(name: string, rows: number, adapters: readonly PeftAdapter[]): number {
  for (const adapter of adapters) {
    const key = adapter.fullTensors.get(name);
    if (key) rows = adapter.file.info(key).shape[0];
    else if (adapter.loraPairs.has(name)) rows = Math.max(rows, adapter.loraPairs.get(name)!.bShape[0]);
  }
  return rows;
}

export interface MergeOptions {
  baseDir: string;
  adapterDirs: string[];
  outDir: string;
  /** Tokenizer folder to copy into the output (default: the last adapter's folder if it has one, else the base's). */
  tokenizerDir?: string;
  dtype?: SaveDtype;
  maxShardBytes?: number;
  force?: boolean;
  onProgress?: (message: string) => void;
  /** Called with what the merge ignores and the user should know (LoRA pairs outside target_modules). */
  onWarning?: (message: string) => void;
}

export interface MergeReport {
  tensors: number;
  loraMerged: number;
  replaced: number;
  vocabSize: number;
  tokenizerFrom?: string;
  tokenizerFiles: string[];
}

async function tokenizerFilesIn(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  return TOKENIZER_FILES.filter((f) => entries.includes(f));
}

/** Merge adapters into a base model folder and write a new HF folder atomically. */
export async function mergeAdaptersIntoCheckpoint(opts: MergeOptions): Promise<MergeReport> {
  if (opts.adapterDirs.length === 0) throw new MergeError('no adapters given; pass at least one --lora folder');
  const say = opts.onProgress ?? (() => undefined);
  const out = await realTarget(opts.outDir);
  for (const input of [opts.baseDir, ...opts.adapterDirs, ...(opts.tokenizerDir ? [opts.tokenizerDir] : [])]) {
    if ((await realTarget(input)) === out) throw new MergeError(`--out ${opts.outDir} is also an input folder; write the merged model somewhere else`);
  }
  // Refuse a non-empty output folder before any work (saveHFCheckpoint checks again when it writes).
  const existing = await fs.readdir(out).catch(() => [] as string[]);
  if (existing.length > 0 && !opts.force) throw new FolderExistsError(opts.outDir);
  const base = await HFCheckpoint.open(opts.baseDir);
  const adapters: PeftAdapter[] = [];
  try {
    checkConfigAgainstWeights(base, opts.baseDir);
    for (const dir of opts.adapterDirs) adapters.push(await PeftAdapter.open(dir));
    for (const adapter of adapters) {
      const warning = adapter.ignoredPairsWarning();
      if (warning) opts.onWarning?.(warning);
    }

    // Every adapter tensor must land on a weight of the base (modules_to_save may add lm_head to a tied model).
    for (const adapter of adapters) {
      for (const weight of adapter.loraPairs.keys()) {
        if (!base.has(weight)) throw new MergeError(`${adapter.dir}: LoRA targets '${weight}', which the base model in ${opts.baseDir} does not have`);
      }
      for (const [weight, key] of adapter.fullTensors) {
        if (!base.has(weight) && !(weight === LM_HEAD && base.config.tieWordEmbeddings)) {
          throw new MergeError(`${adapter.dir}: saved module '${weight}' is not a weight of the base model`);
        }
        const saved = adapter.file.info(key).shape;
        const model = base.info(base.has(weight) ? weight : EMBED).shape;
        const vocabWeight = VOCAB_WEIGHTS.has(weight);
        if (saved.length !== model.length || saved.slice(vocabWeight ? 1 : 0).join() !== model.slice(vocabWeight ? 1 : 0).join()) {
          throw new MergeError(`${adapter.dir}: saved '${weight}' has shape [${saved}] but the base model's is [${model}]`);
        }
      }
    }

    // Plan the vocabulary: the largest row count embed_tokens or lm_head ends with.
    const tied = base.config.tieWordEmbeddings;
    // PEFT on a tied model gives a saved embed_tokens or lm_head its own copy (the other module keeps the
    // shared base matrix), so input and output embeddings differ from then on: the merged model is untied
    const embeddingsApart = adapters.some((a) => a.fullTensors.has(LM_HEAD) || a.loraPairs.has(LM_HEAD) || a.fullTensors.has(EMBED));
    const untie = tied && embeddingsApart;
    const baseVocab = base.info(EMBED).shape[0];
    let vocab = plannedRows(EMBED, baseVocab, adapters);
    if (!tied || untie) vocab = Math.max(vocab, plannedRows(LM_HEAD, base.has(LM_HEAD) ? base.info(LM_HEAD).shape[0] : baseVocab, adapters));
    if (vocab !== base.config.vocabSize) say(`vocabulary: ${base.config.vocabSize} → ${vocab}`);

    const config: LlamaConfig = { ...base.config, vocabSize: vocab, tieWordEmbeddings: tied && !untie, raw: { ...base.config.raw } };

    // Tokenizer: --tokenizer, else the last adapter's folder, else the base folder.
    const candidates = opts.tokenizerDir ? [opts.tokenizerDir] : [opts.adapterDirs[opts.adapterDirs.length - 1], opts.baseDir];
    let tokenizerFrom: string | undefined;
    let tokenizerFiles: string[] = [];
    for (const dir of candidates) {
      const files = await tokenizerFilesIn(dir);
      if (files.some((f) => f === 'tokenizer.model' || f === 'tokenizer.json')) {
        tokenizerFrom = dir;
        tokenizerFiles = files;
        break;
      }
    }
    if (opts.tokenizerDir && !tokenizerFrom) {
      throw new MergeError(`--tokenizer ${opts.tokenizerDir} has no tokenizer.model or tokenizer.json`);
    }
    const extraFiles: Record<string, Uint8Array> = {};
    const copy = async (file: string) => {
      await refuseSpecialFile(file);
      return fs.readFile(file);
    };
    for (const f of tokenizerFiles) extraFiles[f] = await copy(path.join(tokenizerFrom!, f));
    const baseEntries = await fs.readdir(opts.baseDir);
    if (baseEntries.includes('generation_config.json')) extraFiles['generation_config.json'] = await copy(path.join(opts.baseDir, 'generation_config.json'));
    say(tokenizerFrom ? `tokenizer: ${tokenizerFiles.join(', ')} from ${tokenizerFrom}` : 'tokenizer: none found (pass --tokenizer)');

    let loraMerged = 0;
    let replaced = 0;
    let count = 0;
    const names = base.names();
    const total = names.length + (untie && !base.has(LM_HEAD) ? 1 : 0);
    async function* mergedTensors(): AsyncGenerator<NamedTensor> {
      for (const name of names) {
        const info = base.info(name);
        const load = async () => ({ shape: info.shape, data: await base.read(name) });
        loraMerged += adapters.filter((a) => a.loraPairs.has(name)).length;
        replaced += adapters.filter((a) => a.fullTensors.has(name)).length;
        const merged = await applyAdaptersToWeight(name, load, adapters, VOCAB_WEIGHTS.has(name) ? vocab : undefined);
        say(`[${++count}/${total}] ${name} [${merged.shape.join(', ')}]`);
        yield { name, shape: merged.shape, data: merged.data };
      }
      if (untie && !base.has(LM_HEAD)) {
        // The tied base's output layer is its embedding matrix; adapters then apply on top of it.
        const embedInfo = base.info(EMBED);
        const start = async () => ({ shape: embedInfo.shape, data: await base.read(EMBED) });
        replaced += adapters.filter((a) => a.fullTensors.has(LM_HEAD)).length;
        const merged = await applyAdaptersToWeight(LM_HEAD, start, adapters, vocab);
        say(`[${++count}/${total}] ${LM_HEAD} [${merged.shape.join(', ')}]`);
        yield { name: LM_HEAD, shape: merged.shape, data: merged.data };
      }
    }
    // Shapes are known from the headers, so the writer can lay out each shard before any data arrives.
    const layout = names.map((name) => ({ name, shape: VOCAB_WEIGHTS.has(name) ? [vocab, base.info(name).shape[1]] : base.info(name).shape }));
    if (untie && !base.has(LM_HEAD)) layout.push({ name: LM_HEAD, shape: [vocab, base.info(EMBED).shape[1]] });
    await saveHFCheckpoint(opts.outDir, config, mergedTensors(), {
      layout,
      dtype: opts.dtype,
      maxShardBytes: opts.maxShardBytes,
      force: opts.force,
      extraFiles,
    });
    return { tensors: count, loraMerged, replaced, vocabSize: vocab, tokenizerFrom, tokenizerFiles };
  } finally {
    await base.close();
    await Promise.all(adapters.map((a) => a.close()));
  }
}
