/** Scoring: token-weighted HF causal-LM loss and perplexity over batches of token ids. */
import * as tf from '@tensorflow/tfjs-core';
import type { Tokenizer } from '@cllama/tokenizer-merge';
import type { LlamaModel } from './model/llama.js';
import { IGNORE_INDEX } from '@cllama/alpaca-data';
import { TrainerError } from './errors.js';

export interface ScoreResult {
  /** Mean cross-entropy over all predicted (counted) tokens. */
  loss: number;
  perplexity: number;
  /** Number of predicted tokens (labels ≠ -100 after the shift). */
  tokens: number;
  logitsSum?: number;
  logitsAbsSum?: number;
}

function countedTokens(labels: number[]): number {
  let n = 0;
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * Scores rows of equal length (one forward pass for all of them). The loss is HF's: labels shifted
 * by one, -100 ignored, mean over counted tokens.
 */
export class ScoreError extends TrainerError {
  override name = 'ScoreError';
}

export async function scoreBatches(model: LlamaModel, ids: number[][], labels: number[][], opts: { withLogitSums?: boolean } = {}): Promise<ScoreResult> {
  const tokens = labels.reduce((n, r) => n + countedTokens(r), 0);
  // a mean over no tokens is 0/0, not a perplexity of 1
  if (tokens === 0)
    throw new ScoreError('no tokens to score: every label after the first position is -100 (ignored); give labels with at least one counted token');
  const vocab = model.config.vocabSize;
  for (const [what, rows] of [
    ['input id', ids],
    ['label', labels],
  ] as const) {
    for (const row of rows) {
      for (const id of row) {
        if ((id < 0 && !(what === 'label' && id === IGNORE_INDEX)) || id >= vocab) {
          throw new ScoreError(`${what} ${id} is outside the model's vocabulary 0…${vocab - 1}; was it encoded with another tokenizer?`);
        }
      }
    }
  }
  const idsT = tf.tensor2d(ids, undefined, 'int32');
  const labelsT = tf.tensor2d(labels, undefined, 'int32');
  try {
    const lossT = model.loss(idsT, labelsT);
    const loss = (await lossT.data())[0]!;
    lossT.dispose();
    const result: ScoreResult = { loss, perplexity: Math.exp(loss), tokens };
    if (opts.withLogitSums) {
      const logits = model.logits(idsT);
      let sum = 0;
      let abs = 0;
      for (const x of await logits.data()) {
        sum += x;
        abs += Math.abs(x);
      }
      logits.dispose();
      result.logitsSum = sum;
      result.logitsAbsSum = abs;
    }
    return result;
  } finally {
    tf.dispose([idsT, labelsT]);
  }
}

/** Blocks of possibly different lengths (the last may be shorter), batched by equal length. */
export async function scoreTokenBlocks(model: LlamaModel, blocks: number[][], batchSize: number): Promise<ScoreResult> {
  let totalLoss = 0;
  let totalTokens = 0;
  const usable = blocks.filter((b) => b.length >= 2);
  if (usable.length === 0) throw new ScoreError('nothing to score: the text has fewer than 2 tokens');
  for (let i = 0; i < usable.length; ) {
    const len = usable[i]!.length;
    const batch: number[][] = [];
    while (i < usable.length && batch.length < batchSize && usable[i]!.length === len) batch.push(usable[i++]!);
    const r = await scoreBatches(model, batch, batch);
    totalLoss += r.loss * r.tokens;
    totalTokens += r.tokens;
  }
  const loss = totalLoss / totalTokens;
  return { loss, perplexity: Math.exp(loss), tokens: totalTokens };
}

/**
 * Tokenizes text the way the pre-training recipe does (each non-empty line = [BOS] + tokens, no
 * EOS), concatenates, and cuts blocks of `blockSize`; the remainder is kept as a last, shorter block
 * so no text goes unscored.
 */
export function textToBlocks(text: string, tokenizer: Pick<Tokenizer, 'encode'>, blockSize: number): number[][] {
  const stream: number[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    for (const id of tokenizer.encode(line, { addBos: true })) stream.push(id);
  }
  const blocks: number[][] = [];
  for (let s = 0; s < stream.length; s += blockSize) blocks.push(stream.slice(s, s + blockSize));
  return blocks;
}
