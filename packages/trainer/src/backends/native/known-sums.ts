/**
 * Σ x² of tensors whose producer already knew it, for the gradient norm (kernels/CllamaSumOfSquares.ts
 * reads it; kernels/CllamaHeadLossGrad.ts and kernels/UnsortedSegmentSum.ts leave it).
 *
 * The gradient norm reads every gradient once more after the backward pass (~2 ns per element on one
 * JS thread: ~0.1 s a step for a SmolLM-size embedding and head). Some native kernels have the sum at
 * hand for almost nothing — the head's gradient graph reduces its output inside onnxruntime, the
 * embedding's segment sum touches only the rows of the batch's tokens — and leave it here, keyed by the
 * output's data id. Tensor data is immutable in tfjs (an assignment gives a variable a new data id),
 * so a remembered sum stays true for as long as the data id lives; the map holds the ids weakly.
 */
const known = new WeakMap<object, number>();

export function rememberSumOfSquares(dataId: object, value: number): void {
  known.set(dataId, value);
}

/** The remembered Σ x² of this data, or undefined. */
export function knownSumOfSquares(dataId: object): number | undefined {
  return known.get(dataId);
}
