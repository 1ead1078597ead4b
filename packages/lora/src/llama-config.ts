/**
 * Hugging Face LlamaConfig (`config.json`): read, validate, write.
 *
 * Only the fields the model needs are lifted into camelCase; everything else in the file is kept in
 * `raw` and written back untouched, so a folder round-trips through this package without losing keys.
 */
import { refuseSpecialFile, writeFileAtomic } from '@cllama/core';
import { LoraError } from './errors.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export class LlamaConfigError extends LoraError {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'LlamaConfigError';
  }
}

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Grouped-query attention: key/value heads (defaults to numAttentionHeads, i.e. plain multi-head). */
  numKeyValueHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** null, or linear position interpolation (positions divided by factor). */
  ropeScaling: null | { type: 'linear'; factor: number };
  tieWordEmbeddings: boolean;
  vocabSize: number;
  maxPositionEmbeddings: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId?: number;
  /** The whole config.json as read (or as it will be written), unknown keys included. */
  raw: Record<string, unknown>;
}

/** The head dimension, hidden / heads. */
export function headDim(config: Pick<LlamaConfig, 'hiddenSize' | 'numAttentionHeads'>): number {
  return config.hiddenSize / config.numAttentionHeads;
}

/** Defaults of transformers' LlamaConfig for the optional fields. */
const DEFAULTS = {
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  bos_token_id: 1,
  eos_token_id: 2,
  tie_word_embeddings: false,
};

/** Validate a parsed config.json object and lift its fields. */
export function parseLlamaConfig(json: unknown, file?: string): LlamaConfig {
  const fail = (msg: string): never => {
    throw new LlamaConfigError(msg, file);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('config is not a JSON object');
  const raw = json as Record<string, unknown>;
  if (raw.model_type !== undefined && raw.model_type !== 'llama') {
    fail(`model_type is '${String(raw.model_type)}'; only LLaMA-architecture models ('llama') are supported`);
  }

  const positiveInt = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (v === undefined) fail(`missing required field '${key}' (a positive integer)`);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) fail(`'${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const tokenId = (key: string, fallback?: number): number | undefined => {
    let v = raw[key] ?? fallback;
    // Newer configs may list several EOS ids; the first is the one generation stops on by default.
    if (Array.isArray(v)) v = v[0];
    if (v === undefined || v === null) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`'${key}' must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const positiveNumber = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`'${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };

  const hiddenSize = positiveInt('hidden_size');
  const numAttentionHeads = positiveInt('num_attention_heads');
  const numKeyValueHeads = positiveInt('num_key_value_heads', numAttentionHeads);
  if (hiddenSize % numAttentionHeads !== 0) fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    fail(`num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  if (raw.head_dim !== undefined && raw.head_dim !== null && raw.head_dim !== hiddenSize / numAttentionHeads) {
    fail(`head_dim ${String(raw.head_dim)} differs from hidden_size / num_attention_heads = ${hiddenSize / numAttentionHeads}; such models are not supported`);
  }
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`hidden_act '${String(act)}' is not supported (LLaMA uses 'silu')`);

  const tie = raw.tie_word_embeddings ?? DEFAULTS.tie_word_embeddings;
  if (typeof tie !== 'boolean') fail(`'tie_word_embeddings' must be true or false, got ${JSON.stringify(tie)}`);

  const config: LlamaConfig = {
    hiddenSize,
    intermediateSize: positiveInt('intermediate_size'),
    numHiddenLayers: positiveInt('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    rmsNormEps: positiveNumber('rms_norm_eps', DEFAULTS.rms_norm_eps),
    ropeTheta: ropeTheta(raw, fail),
    ropeScaling: parseRopeScaling(ropeParameters(raw, fail) ?? raw.rope_scaling, fail),
    tieWordEmbeddings: tie as boolean,
    vocabSize: positiveInt('vocab_size'),
    maxPositionEmbeddings: positiveInt('max_position_embeddings', DEFAULTS.max_position_embeddings),
    bosTokenId: tokenId('bos_token_id', DEFAULTS.bos_token_id)!,
    eosTokenId: tokenId('eos_token_id', DEFAULTS.eos_token_id)!,
    raw: { ...raw },
  };
  const pad = tokenId('pad_token_id');
  if (pad !== undefined) config.padTokenId = pad;
  return config;
}

/**
 * transformers 5 writes the rotary settings as one object, `rope_parameters: {rope_type, rope_theta,
 * factor, …}`, and no top-level rope_theta / rope_scaling; older files have those two. Either is read;
 * rope_parameters wins when both are there (it is what transformers 5 itself reads).
 */
function ropeParameters(raw: Record<string, unknown>, fail: (msg: string) => never): Record<string, unknown> | undefined {
  const v = raw.rope_parameters;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) fail(`rope_parameters must be an object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

function ropeTheta(raw: Record<string, unknown>, fail: (msg: string) => never): number {
  const v = ropeParameters(raw, fail)?.rope_theta ?? raw.rope_theta ?? DEFAULTS.rope_theta;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`'rope_theta' must be a positive number, got ${JSON.stringify(v)}`);
  return v as number;
}

function parseRopeScaling(value: unknown, fail: (msg: string) => never): LlamaConfig['ropeScaling'] {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) fail(`rope_scaling must be null or an object, got ${JSON.stringify(value)}`);
  const v = value as Record<string, unknown>;
  const kind = v.rope_type ?? v.type;
  if (kind === 'default' || (kind === undefined && v.factor === undefined)) return null; // {rope_type: 'default'} (or rope_parameters with rope_theta alone): no scaling
  if (kind !== 'linear') {
    fail(`rope_scaling type ${JSON.stringify(kind)} is not supported; only 'linear' (or none) is — remove rope_scaling or convert the model`);
  }
  const factor = v.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    fail(`rope_scaling.factor must be a number ≥ 1, got ${JSON.stringify(factor)}`);
  }
  return { type: 'linear', factor: factor as number };
}

/** Read and validate `<dir>/config.json` (or a path to the json file itself). */
export async function readLlamaConfig(dirOrFile: string): Promise<LlamaConfig> {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'config.json');
  await refuseSpecialFile(file);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LlamaConfigError('not found; a Hugging Face model folder must contain config.json', file);
    }
    throw new LlamaConfigError(`cannot read (${(err as Error).message})`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LlamaConfigError(`is not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`, file);
  }
  return parseLlamaConfig(json, file);
}

/**
 * The config.json object for a config: `raw` with the lifted fields written over it (so edits to the
 * camelCase fields, e.g. a resized vocabulary, win), keys sorted like transformers' save_pretrained.
 */
export function llamaConfigToJson(config: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    ...config.raw,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: config.ropeScaling ? { type: 'linear', factor: config.ropeScaling.factor } : null,
    // a transformers 5 file's rope_parameters is rewritten to agree with the two fields above
    ...(config.raw.rope_parameters !== undefined
      ? {
          rope_parameters: config.ropeScaling
            ? { rope_type: 'linear', factor: config.ropeScaling.factor, rope_theta: config.ropeTheta }
            : { rope_type: 'default', rope_theta: config.ropeTheta },
        }
      : {}),
    tie_word_embeddings: config.tieWordEmbeddings,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: Array.isArray(config.raw.eos_token_id) && config.raw.eos_token_id[0] === config.eosTokenId ? config.raw.eos_token_id : config.eosTokenId,
  };
  if (config.padTokenId !== undefined) out.pad_token_id = config.padTokenId;
  else delete out.pad_token_id;
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((k) => [k, out[k]]),
  );
}

/** Serialize like transformers (indent 2, sorted keys, trailing newline). */
export function serializeLlamaConfig(config: LlamaConfig): string {
  return JSON.stringify(llamaConfigToJson(config), null, 2) + '\n';
}

/** Write `<dir>/config.json` atomically. */
export async function writeLlamaConfig(dir: string, config: LlamaConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, 'config.json'), serializeLlamaConfig(config));
}

/** Build a LlamaConfig from camelCase fields (for tests and freshly initialised models). */
export function createLlamaConfig(
  fields: Omit<Partial<LlamaConfig>, 'raw'> & Pick<LlamaConfig, 'hiddenSize' | 'intermediateSize' | 'numHiddenLayers' | 'numAttentionHeads' | 'vocabSize'>,
): LlamaConfig {
  const base: LlamaConfig = {
    numKeyValueHeads: fields.numAttentionHeads,
    rmsNormEps: DEFAULTS.rms_norm_eps,
    ropeTheta: DEFAULTS.rope_theta,
    ropeScaling: null,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: DEFAULTS.max_position_embeddings,
    bosTokenId: DEFAULTS.bos_token_id,
    eosTokenId: DEFAULTS.eos_token_id,
    ...fields,
    raw: {},
  };
  // Round-trip through JSON so the result is validated exactly like a file read from disk.
  return parseLlamaConfig(llamaConfigToJson(base));
}
