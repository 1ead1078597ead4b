/**
 * Gradient registrations the model relies on, made by registerGradients() (initBackend calls it;
 * idempotent; nothing happens at import).
 *
 * 1. tfjs-core's CommonJS build ships without its gradient functions: they are registered by the
 *    `@tensorflow/tfjs` union bundle (its ESM-only `dist/register_all_gradients.js` does not load in
 *    Node). Importing the union package once makes tf.grads / tf.variableGrads work for every op.
 * 2. BatchMatMul's gradient is replaced by the same mathematics written with explicit transposes:
 *    tfjs's version multiplies with transpose flags, which tfjs-wasm runs ~10× slower than
 *    tf.transpose followed by a plain matMul. Where the active backend's transpose flags are free
 *    (its facts, src/backends/facts.ts) tfjs's flag form is kept (for operands without broadcast
 *    batch dimensions). Each input's gradient stays lazy, so frozen weights cost nothing in the
 *    backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendFacts } from '../backends/registry.js';
import { transposeLast2 } from './ops.js';

/** op(x) = xᵀ (last two axes) when `transposed`, else x. */
const maybeT = (x: tf.Tensor, transposed: boolean) => (transposed ? transposeLast2(x) : x);

/**
 * tfjs's own formulation, with transpose flags: where they are free no transposed copy of a weight is
 * made in the backward pass either.
 */
function flagGradient(a: tf.Tensor, b: tf.Tensor, g: tf.Tensor, transposeA: boolean, transposeB: boolean) {
  if (!transposeA && !transposeB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
  if (!transposeA && transposeB) return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
  if (transposeA && !transposeB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
  return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
}

/** Equal leading (batch) dimensions: no broadcasting to undo in the gradient. */
const sameBatch = (a: tf.Tensor, b: tf.Tensor) => a.rank === b.rank && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);

const batchMatMulGrad: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const g = dy as tf.Tensor;
    // a registered gradient runs on the backend of its forward op, the active one
    if (backendFacts().transposeFlagsFree && sameBatch(a, b)) return flagGradient(a, b, g, transposeA, transposeB);
    // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC; then undo op().
    return {
      a: () => maybeT(tf.matMul(g, transposeLast2(maybeT(b, transposeB))), transposeA),
      b: () => maybeT(tf.matMul(transposeLast2(maybeT(a, transposeA)), g), transposeB),
    };
  },
};

let registered: Promise<void> | undefined;

/** Registers every op's gradient (from the @tensorflow/tfjs union package), then the overrides above. */
export function registerGradients(): Promise<void> {
  registered ??= (async () => {
    await import('@tensorflow/tfjs');
    tf.registerGradient(batchMatMulGrad);
  })();
  return registered;
}
