/**
 * Text generation with a KV cache: greedy or sampled (temperature, top-k, top-p, repetition
 * penalty — applied in Hugging Face's order), seeded, stopping at EOS, tokens streamed as they come.
 *
 * Where the model's backend reads synchronously (its facts' `syncReads`: wasm, cpu, tensorflow,
 * native) the logits row comes to JS and the token is picked there (pickNextToken). Elsewhere (webgpu)
 * the same steps run as tensor ops on the device (pickNextTokenOnDevice) and only the chosen id comes back.
 *
 * Padded embeddings: a model's embedding is often larger than its tokenizer (rounded up to a multiple
 * of 64 or 128 for the GPU kernels); ids past the tokenizer have rows but no piece. `vocabLimit` (the
 * CLI passes the tokenizer's size) cuts the logits row to the ids below it before anything else, so
 * neither greedy nor sampled decoding can pick an id the tokenizer cannot decode — the same as giving
 * those ids −Infinity (what HF's SuppressTokensLogitsProcessor does for listed ids).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from './model/llama.js';
import { Mulberry32 } from '@cllama/core';
import { TrainerError } from './errors.js';

export class GenerationError extends TrainerError {
  constructor(message: string) {
    super(message);
    this.name = 'GenerationError';
  }
}

export interface GenerationOptions {
  /** Most tokens to generate (default 128). */
  maxNewTokens?: number;
  /** false = greedy (argmax). Default: true when temperature, topK or topP is set. */
  doSample?: boolean;
  /** Divides the logits before sampling (default 1). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to ≥ topP (1 = off). */
  topP?: number;
  /** HF's CTRL-style penalty on tokens already in the prompt or output (1 = off). */
  repetitionPenalty?: number;
  /** Seed for sampling (default 0). */
  seed?: number;
  /** Stop after generating this token (default: the model config's eos_token_id; null = never). */
  eosTokenId?: number | null;
  /** Only ids below this are generated (the tokenizer's size when the embedding is padded past it; default: every row). */
  vocabLimit?: number;
}

/** The Alpaca prompt the Chinese-LLaMA-Alpaca models were fine-tuned with (input appended to the instruction). */
export function alpacaPrompt(instruction: string, input?: string): string {
  const full = input && input.trim() !== '' ? `${instruction}\n${input}` : instruction;
  return (
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
    `### Instruction:\n${full}\n\n### Response: `
  );
}

interface ResolvedOptions {
  maxNewTokens: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  eosTokenId: number | null;
  /** Ids at or past this are never picked (undefined: none excluded). */
  vocabLimit: number | undefined;
}

function resolve(opts: GenerationOptions, defaultEos: number): ResolvedOptions {
  const r: ResolvedOptions = {
    maxNewTokens: opts.maxNewTokens ?? 128,
    doSample: opts.doSample ?? (opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined),
    temperature: opts.temperature ?? 1,
    topK: opts.topK ?? 0,
    topP: opts.topP ?? 1,
    repetitionPenalty: opts.repetitionPenalty ?? 1,
    seed: opts.seed ?? 0,
    eosTokenId: opts.eosTokenId === undefined ? defaultEos : opts.eosTokenId,
    vocabLimit: opts.vocabLimit,
  };
  if (r.vocabLimit !== undefined && !(Number.isInteger(r.vocabLimit) && r.vocabLimit >= 1))
    throw new GenerationError(`vocabLimit must be a positive integer, got ${r.vocabLimit}`);
  if (!Number.isInteger(r.maxNewTokens) || r.maxNewTokens < 0) throw new GenerationError(`maxNewTokens must be a non-negative integer, got ${r.maxNewTokens}`);
  if (!(r.temperature > 0)) throw new GenerationError(`temperature must be > 0 (use doSample: false for greedy), got ${r.temperature}`);
  if (!Number.isInteger(r.topK) || r.topK < 0) throw new GenerationError(`topK must be a non-negative integer, got ${r.topK}`);
  if (!(r.topP > 0 && r.topP <= 1)) throw new GenerationError(`topP must be in (0, 1], got ${r.topP}`);
  if (!(r.repetitionPenalty > 0)) throw new GenerationError(`repetitionPenalty must be > 0, got ${r.repetitionPenalty}`);
  return r;
}

/** HF RepetitionPenaltyLogitsProcessor: for every token seen, score < 0 ? score·p : score / p. In place. */
export function applyRepetitionPenalty(scores: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    const s = scores[id]!;
    scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

/** HF TopKLogitsWarper: scores below the k-th largest become -Infinity (ties kept). In place. */
export function applyTopK(scores: Float32Array, k: number): void {
  if (k <= 0 || k >= scores.length) return;
  const kth = Float32Array.from(scores).sort((a, b) => b - a)[k - 1]!;
  for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
}

/** Softmax in float64. */
export function softmax(scores: Float32Array): Float64Array {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  const p = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += p[i] = Math.exp(scores[i]! - max);
  for (let i = 0; i < p.length; i++) p[i]! /= sum;
  return p;
}

/**
 * HF TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability is ≤ 1 − topP
 * (the most likely token always stays). In place.
 */
export function applyTopP(scores: Float32Array, topP: number): void {
  if (topP >= 1) return;
  const probs = softmax(scores);
  const order = [...scores.keys()].sort((a, b) => scores[a]! - scores[b]!);
  let cumulative = 0;
  for (let i = 0; i < order.length - 1; i++) {
    cumulative += probs[order[i]!]!;
    if (cumulative <= 1 - topP) scores[order[i]!] = -Infinity;
    else break;
  }
}

export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}

/** Picks the next token from one row of logits (copied), given the tokens so far. */
export function pickNextToken(logits: Float32Array, history: readonly number[], opts: ResolvedOptions, rng: Mulberry32): number {
  // ids past the tokenizer (a padded embedding) are not candidates at all
  const scores = Float32Array.from(opts.vocabLimit !== undefined && opts.vocabLimit < logits.length ? logits.subarray(0, opts.vocabLimit) : logits);
  applyRepetitionPenalty(scores, history, opts.repetitionPenalty);
  if (!opts.doSample) return argmax(scores);
  if (opts.temperature !== 1) for (let i = 0; i < scores.length; i++) scores[i]! /= opts.temperature;
  applyTopK(scores, opts.topK);
  applyTopP(scores, opts.topP);
  const probs = softmax(scores);
  const u = rng.next();
  let cumulative = 0;
  for (let i = 0; i < probs.length; i++) {
    cumulative += probs[i]!;
    if (u < cumulative) return i;
  }
  return argmax(probs);
}

/**
 * pickNextToken's steps as tensor ops, for a [1, vocab] logits tensor that stays on the device:
 * repetition penalty (a 0/1 mask of the seen tokens), then greedy argmax, or temperature, top-k and
 * top-p as one threshold on the scores (the smallest score kept), softmax, and the first token
 * whose cumulative probability (in vocabulary order, as pickNextToken) exceeds u. Reads one id.
 */
export async function pickNextTokenOnDevice(logits: tf.Tensor2D, history: readonly number[], opts: ResolvedOptions, rng: Mulberry32): Promise<number> {
  const vocab = Math.min(logits.shape[1], opts.vocabLimit ?? Infinity);
  const u = opts.doSample ? rng.next() : 0;
  const id = tf.tidy(() => {
    // ids past the tokenizer (a padded embedding) are cut off first, as in pickNextToken
    let scores = tf.reshape(vocab < logits.shape[1] ? tf.slice(logits, [0, 0], [1, vocab]) : logits, [vocab]) as tf.Tensor1D;
    if (opts.repetitionPenalty !== 1) {
      const seen = new Float32Array(vocab);
      for (const t of history) if (t < vocab) seen[t] = 1;
      const p = opts.repetitionPenalty;
      const penalised = tf.where(tf.less(scores, 0), tf.mul(scores, p), tf.div(scores, p));
      scores = tf.where(tf.cast(tf.tensor1d(seen), 'bool'), penalised, scores) as tf.Tensor1D;
    }
    if (!opts.doSample) return tf.argMax(scores);
    if (opts.temperature !== 1) scores = tf.div(scores, opts.temperature);
    const k = opts.topK > 0 && opts.topK < vocab ? opts.topK : vocab;
    if (k < vocab || opts.topP < 1) {
      const sorted = tf.topk(scores, k).values; // descending
      // top-p: keep a token while the probability of the tokens ranked above it is < topP
      const probs = tf.softmax(sorted);
      const keep = opts.topP < 1 ? tf.less(tf.sub(tf.cumsum(probs), probs), opts.topP) : tf.onesLike(probs).cast('bool');
      const threshold = tf.min(tf.where(keep, sorted, tf.fill([k], Infinity)));
      scores = tf.where(tf.greaterEqual(scores, threshold), scores, tf.fill([vocab], -Infinity)) as tf.Tensor1D;
    }
    const kept = scores;
    const cumulative = tf.cumsum(tf.softmax(kept));
    // the first index whose cumulative probability exceeds u = how many do not
    return tf.minimum(tf.sum(tf.cast(tf.lessEqual(cumulative, u), 'int32')), vocab - 1);
  });
  const value = (await id.data())[0]!;
  id.dispose();
  return value;
}

/** Builds the resolved options (exported for tests and the CLI). */
export function resolveGenerationOptions(opts: GenerationOptions, defaultEos: number): ResolvedOptions {
  return resolve(opts, defaultEos);
}
export type { ResolvedOptions };

/**
 * Yields generated token ids one at a time (the prompt is not repeated). The prompt runs through the
 * model once; each new token then costs one single-position forward pass against the KV cache.
 */
export async function* generateTokens(model: LlamaModel, promptIds: readonly number[], options: GenerationOptions = {}): AsyncGenerator<number> {
  if (promptIds.length === 0) throw new GenerationError('the prompt is empty: give at least one token (e.g. BOS)');
  const opts = resolve(options, model.config.eosTokenId);
  const limit = model.config.maxPositionEmbeddings;
  if (promptIds.length >= limit) {
    throw new GenerationError(
      `the prompt is ${promptIds.length} tokens but the model reads at most ${limit} (max_position_embeddings), leaving no room to generate; shorten the prompt`,
    );
  }
  const vocab = model.config.vocabSize;
  const outOfRange = promptIds.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
  if (outOfRange >= 0) {
    throw new GenerationError(
      `prompt token ${outOfRange} is id ${promptIds[outOfRange]}, outside the model's vocabulary 0…${vocab - 1}; was it encoded with another tokenizer?`,
    );
  }
  const rng = Mulberry32.scrambled(opts.seed);
  const history = [...promptIds];
  const cache = model.newCache();
  const release = model.retainTransposedWeights();
  try {
    let input = [...promptIds];
    for (let step = 0; step < opts.maxNewTokens; step++) {
      if (history.length >= limit) break;
      const ids = tf.tensor2d([input], [1, input.length], 'int32');
      const logitsT = model.nextTokenLogits(ids, cache);
      const next = model.facts.syncReads
        ? pickNextToken(logitsT.dataSync() as Float32Array, history, opts, rng)
        : await pickNextTokenOnDevice(logitsT, history, opts, rng);
      tf.dispose([ids, logitsT]);
      history.push(next);
      yield next;
      if (opts.eosTokenId !== null && next === opts.eosTokenId) break;
      input = [next];
    }
  } finally {
    release();
    cache.dispose();
  }
}

/** Generates and returns all new token ids; `onToken` sees each as it comes. */
export async function generate(
  model: LlamaModel,
  promptIds: readonly number[],
  options: GenerationOptions = {},
  onToken?: (id: number) => void,
): Promise<number[]> {
  const out: number[] = [];
  for await (const id of generateTokens(model, promptIds, options)) {
    out.push(id);
    onToken?.(id);
  }
  return out;
}
