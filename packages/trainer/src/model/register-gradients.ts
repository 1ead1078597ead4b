/**
 * Gradient registrations the model relies on, made by registerGradients() (initBackend calls it;
 * idempotent; nothing happens at import).
 *
 * 1. tfjs-core's CommonJS build ships without its gradient functions: they are registered by the
 *    `@tensorflow/tfjs` union bundle (its ESM-only `dist/register_all_gradients.js` does not load in
 *    Node). Importing the union package once makes tf.grads / tf.variableGrads work for every op.
 * 2. BatchMatMul's gradient is replaced by the same mathematics written with explicit transposes:
 *    tfjs's version multiplies with transpose flags, which tfjs-wasm runs ~10× slower than
 *    tf.transpose followed by a plain matMul. Where the flags are free (the native backend) tfjs's
 *    flag form is kept (for operands without broadcast batch dimensions). Each input's gradient stays lazy, so frozen weights cost
 *    nothing in the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { transposeFlagsAreFree } from './ops.js';

function swapLast2(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return tf.transpose(x, perm);
}

/** op(x) = xᵀ (last two axes) when `transposed`, else x. */
const maybeT = (x: tf.Tensor, transposed: boolean) => (transposed ? swapLast2(x) : x);

/**
 * tfjs's own formulation, with transpose flags: where they are free (the native backend) no
 * transposed copy of a weight is made in the backward pass either.
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
    if (transposeFlagsAreFree() && sameBatch(a, b)) return flagGradient(a, b, g, transposeA, transposeB);
    // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC; then undo op().
    return {
      a: () => maybeT(tf.matMul(g, swapLast2(maybeT(b, transposeB))), transposeA),
      b: () => maybeT(tf.matMul(swapLast2(maybeT(a, transposeA)), g), transposeB),
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
