/**
 * `cllama-train score`: loss, perplexity and token count of a model on a text file (cut into blocks
 * like pre-training) or on explicit input ids (+ labels), optionally with a LoRA adapter.
 */
import { readFile } from 'node:fs/promises';
import { defineCommand } from '@cllama/core';
import { initBackend, type BackendChoice } from '../backend.js';
import { checkModelMemory } from '../memory.js';
import { loadLlama } from '../model/io.js';
import { scoreBatches, scoreTokenBlocks, textToBlocks, type ScoreResult } from '../score.js';
import { attachLoraFromDir } from '../model/adapter.js';
import { BACKEND_ARG, parsePositiveInt, reportBackend, UsageError } from './common.js';

interface ScoreFlags {
  model: string;
  lora?: string;
  tokenizer?: string;
  textFile?: string;
  blockSize?: number;
  batchSize: number;
  inputIds?: string;
  labels?: string;
  json?: boolean;
  backend: BackendChoice;
}

async function readIdMatrix(file: string, what: string): Promise<number[][]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`${what} ${file}: ${(err as Error).message}`);
  }
  const rows = Array.isArray(parsed) && parsed.every((x) => typeof x === 'number') ? [parsed as number[]] : parsed;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.length > 0 && r.every((x) => Number.isInteger(x)))) {
    throw new UsageError(`${what} ${file} must hold a JSON array of integers or an array of equal-length arrays of integers`);
  }
  const width = (rows[0] as number[]).length;
  if (!rows.every((r) => (r as number[]).length === width)) throw new UsageError(`${what} ${file}: rows have different lengths`);
  return rows as number[][];
}

export const scoreCommand = defineCommand<ScoreFlags>({
  meta: {
    name: 'score',
    description: 'loss, perplexity and token count of a model on text or token ids',
    example: 'cllama-train score --model chinese-alpaca-7b --text-file zh_heldout.txt --json',
  },
  args: {
    model: { type: 'string', valueHint: 'dir', description: 'Hugging Face LLaMA folder', required: true },
    lora: { type: 'string', valueHint: 'dir', description: 'PEFT LoRA adapter folder to apply (unmerged)' },
    tokenizer: { type: 'string', valueHint: 'path', description: 'tokenizer (.model file or HF folder); default: the model folder' },
    'text-file': { type: 'string', valueHint: 'file', description: 'text to score: each line = [BOS] + tokens, concatenated and cut into blocks' },
    'block-size': {
      type: 'string',
      valueHint: 'n',
      description: 'tokens per block for --text-file (default: min(512, max_position_embeddings))',
      parse: parsePositiveInt('--block-size'),
    },
    'batch-size': { type: 'string', valueHint: 'n', description: 'blocks per forward pass', parse: parsePositiveInt('--batch-size'), default: 4 },
    'input-ids': { type: 'string', valueHint: 'file', description: 'JSON [[ids…], …] to score (also prints logits_sum / logits_abs_sum)' },
    labels: { type: 'string', valueHint: 'file', description: 'JSON labels for --input-ids (-100 = ignored); default: the input ids' },
    json: { type: 'boolean', description: 'print one JSON object' },
    backend: BACKEND_ARG,
  },
  run: async ({ args: flags }) => {
    if (!flags.textFile === !flags.inputIds) throw new UsageError('give exactly one of --text-file or --input-ids');
    if (flags.labels && !flags.inputIds) throw new UsageError('--labels goes with --input-ids');
    // read and check every input before the backend starts (no tfjs banner before a usage error)
    let ids: number[][] | undefined;
    let labels: number[][] | undefined;
    let text: string | undefined;
    let tokenizer: Awaited<ReturnType<typeof import('@cllama/tokenizer-merge').loadTokenizer>> | undefined;
    if (flags.inputIds) {
      ids = await readIdMatrix(flags.inputIds, '--input-ids');
      labels = flags.labels ? await readIdMatrix(flags.labels, '--labels') : ids;
      if (labels.length !== ids.length || labels[0]!.length !== ids[0]!.length) throw new UsageError('--labels must have the shape of --input-ids');
    } else {
      const { loadTokenizer } = await import('@cllama/tokenizer-merge');
      tokenizer = await loadTokenizer(flags.tokenizer ?? flags.model);
      text = await readFile(flags.textFile!, 'utf8');
    }
    const backend = await initBackend(flags.backend);
    const shape = ids ? { batchSize: ids.length, seqLen: ids[0]!.length } : { batchSize: flags.batchSize, seqLen: flags.blockSize ?? 512 };
    await checkModelMemory(flags.model, { kind: 'inference', ...shape }, { backend: backend.name });
    const model = await loadLlama(flags.model);
    if (flags.lora) await attachLoraFromDir(model, flags.lora);
    reportBackend(backend);
    let result: ScoreResult;
    if (ids && labels) {
      result = await scoreBatches(model, ids, labels, { withLogitSums: true });
    } else {
      const blockSize = flags.blockSize ?? Math.min(512, model.config.maxPositionEmbeddings);
      result = await scoreTokenBlocks(model, textToBlocks(text!, tokenizer!, blockSize), flags.batchSize);
    }
    model.dispose();
    const out: Record<string, unknown> = { loss: result.loss, perplexity: result.perplexity, tokens: result.tokens };
    if (result.logitsSum !== undefined) Object.assign(out, { logits_sum: result.logitsSum, logits_abs_sum: result.logitsAbsSum });
    out.backend = backend.name;
    if (flags.json) {
      console.log(JSON.stringify(out));
    } else {
      console.log(`loss        ${result.loss.toFixed(6)}`);
      console.log(`perplexity  ${result.perplexity.toFixed(4)}`);
      console.log(`tokens      ${result.tokens}`);
      if (result.logitsSum !== undefined) {
        console.log(`logits_sum      ${result.logitsSum}`);
        console.log(`logits_abs_sum  ${result.logitsAbsSum}`);
      }
      console.log(`backend     ${backend.name} (${backend.package})`);
    }
  },
});
