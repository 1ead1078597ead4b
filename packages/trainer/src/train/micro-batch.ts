/**
 * One micro-batch's loss and gradients, and how a batch splits into shards whose results add up to
 * the whole batch's. Shared by the training loop (this thread) and the data-parallel workers, so
 * both run exactly the same code.
 *
 * The HF causal-LM loss is a mean over the counted targets (labels ≠ -100 at positions 1…seq-1). If
 * shard k holds n_k of the batch's N counted targets, the batch loss is Σ (n_k / N) · loss_k, and by
 * linearity its gradient is Σ (n_k / N) · ∇loss_k: splitting the rows changes nothing but the order
 * of floating-point additions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX } from '@cllama/alpaca-data';
import { backendFacts } from '../backends/registry.js';

export interface Batch {
  inputIds: Int32Array;
  labels: Int32Array;
  batch: number;
  seqLen: number;
}

/** Examples the loop draws batches from (train/data.ts builds them from the tokenized cache). */
export interface BatchSource {
  /** Number of examples. */
  readonly length: number;
  /** Collates the examples at `indices` into one padded batch. */
  batch(indices: ArrayLike<number>): Batch;
}

export interface LossModel {
  /** Mean causal-LM loss of the batch; differentiable w.r.t. the trainable variables. */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar;
}

/** Targets that count towards the loss: labels ≠ -100 after the shift by one. */
export function countedTargets(b: Batch): number {
  let n = 0;
  for (let r = 0; r < b.batch; r++) {
    for (let t = 1; t < b.seqLen; t++) if (b.labels[r * b.seqLen + t] !== IGNORE_INDEX) n++;
  }
  return n;
}

/**
 * Loss and gradients (keyed by the caller's names) of one micro-batch; the caller owns the tensors.
 * The loss is the one value read back (async: the webgpu backend has no synchronous read).
 */
export async function microBatchGradients(
  model: LossModel,
  params: ReadonlyArray<{ name: string; variable: tf.Variable }>,
  b: Batch,
): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const { value, grads } = tf.tidy(() => {
    const ids = tf.tensor2d(b.inputIds, [b.batch, b.seqLen], 'int32');
    const labels = tf.tensor2d(b.labels, [b.batch, b.seqLen], 'int32');
    return tf.variableGrads(
      () => model.loss(ids, labels),
      params.map((p) => p.variable),
    );
  });
  const nameOf = new Map(params.map((p) => [p.variable.name, p.name]));
  const out = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) out.set(nameOf.get(varName)!, g);
  const loss = (await value.data())[0]!;
  value.dispose();
  return { loss, grads: out };
}

/**
 * A float32 tensor's values, read without an intermediate copy where the backend allows it: on a
 * backend with `heapTensors` (tfjs-wasm) `typedArrayFromHeap` is a view of the heap, valid until the
 * next tfjs call (copy it at once). Other backends: dataSync (a copy). Data parallelism moves the
 * trainable weights and their gradients through shared memory every step, so a saved copy of 50 MB matters.
 */
export function readValues(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as { typedArrayFromHeap?: (t: tf.TensorInfo) => ArrayLike<number> };
  if (backendFacts().heapTensors && typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap(t) as Float32Array;
  return t.dataSync() as Float32Array;
}

/** A tensor from values in shared memory: copied (a `heapTensors` backend copies on creation; others keep the array). */
export function tensorFromShared(values: Float32Array, shape: readonly number[]): tf.Tensor {
  return tf.tensor(backendFacts().heapTensors ? values : values.slice(), [...shape], 'float32');
}

/** Loss of one batch without gradients (evaluation). */
export async function microBatchLoss(model: LossModel, b: Batch): Promise<number> {
  const loss = tf.tidy(() => {
    const ids = tf.tensor2d(b.inputIds, [b.batch, b.seqLen], 'int32');
    const labels = tf.tensor2d(b.labels, [b.batch, b.seqLen], 'int32');
    return model.loss(ids, labels);
  });
  const value = (await loss.data())[0]!;
  loss.dispose();
  return value;
}

export interface Shard {
  batch: Batch;
  /** n_k / N: this shard's share of the batch's counted targets. */
  weight: number;
}

/**
 * Splits a batch into up to `parts` row ranges of near-equal size and drops the ones with nothing
 * to count (their loss would be 0/0 and their gradient is zero). Returns [] when the whole batch
 * counts nothing, so the caller can fall back to the unsplit batch.
 */
export function splitBatch(b: Batch, parts: number): Shard[] {
  const k = Math.max(1, Math.min(parts, b.batch));
  const shards: Array<{ batch: Batch; n: number }> = [];
  let row = 0;
  for (let i = 0; i < k; i++) {
    const rows = Math.floor(b.batch / k) + (i < b.batch % k ? 1 : 0);
    const range = [row * b.seqLen, (row + rows) * b.seqLen] as const;
    const batch: Batch = { inputIds: b.inputIds.slice(...range), labels: b.labels.slice(...range), batch: rows, seqLen: b.seqLen };
    shards.push({ batch, n: countedTargets(batch) });
    row += rows;
  }
  const total = shards.reduce((s, x) => s + x.n, 0);
  if (total === 0) return [];
  return shards.filter((s) => s.n > 0).map((s) => ({ batch: s.batch, weight: s.n / total }));
}
