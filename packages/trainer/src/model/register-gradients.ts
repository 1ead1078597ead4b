/**
 * Gradient registrations the model relies on, made by registerGradients() (initBackend calls it;
 * idempotent; nothing happens at import).
 *
 * 1. tfjs-core's CommonJS build ships without its gradient functions: they are registered by the
 *    `@tensorflow/tfjs` union bundle (its ESM-only `dist/register_all_gradients.js` does not load in
 *    Node). Importing the union package once makes tf.grads / tf.variableGrads work for every op.
 * 2. BatchMatMul's gradient is replaced by the same mathematics written with explicit transposes:
 *    tfjs's version multiplies with transpose flags, which tfjs-wasm runs ~10× slower than
 *    tf.transpose followed by a plain matMul. Each input's gradient stays lazy, so frozen weights
 *    cost nothing in the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';

function swapLast2(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return tf.transpose(x, perm);
}

/** op(x) = xᵀ (last two axes) when `transposed`, else x. */
const maybeT = (x: tf.Tensor, transposed: boolean) => (transposed ? swapLast2(x) : x);

const batchMatMulGrad: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const g = dy as tf.Tensor;
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
