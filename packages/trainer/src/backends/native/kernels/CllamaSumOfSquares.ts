/**
 * CllamaSumOfSquares (contract in src/kernel-names.ts) for the native backend: Σ x² of a float32 tensor
 * as a scalar, for the gradient norm, without writing x² out.
 *
 * Reference: tf.sum(tf.square(x)), what src/train/gradients.ts runs on a backend without this kernel
 * (float32 squares, then a float64 sum in tfjs-cpu); here the squares are summed in float64 directly,
 * or not at all where the tensor's producer already took the sum (../known-sums.ts).
 */
import { SUM_OF_SQUARES_KERNEL } from '../../../kernel-names.js';
import { f32, type NativeKernel } from '../kernel-util.js';
import { knownSumOfSquares } from '../known-sums.js';

/**
 * Σ x² in float64, one pass (tf.sum(tf.square(x)) writes the squares out first), with four partial
 * sums so that the additions do not wait on each other (~2× faster than one running sum).
 */
export function sumOfSquares(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length;
  const n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    const a = x[i]!;
    const b = x[i + 1]!;
    const c = x[i + 2]!;
    const d = x[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (let i = n4; i < n; i++) s0 += x[i]! * x[i]!;
  return s0 + s1 + (s2 + s3);
}

export const sumOfSquaresKernel: NativeKernel = {
  kernelName: SUM_OF_SQUARES_KERNEL,
  build: () => (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x!);
    if (!xv) throw new Error(`${SUM_OF_SQUARES_KERNEL}: x must be a float32 tensor`);
    // a sum its producer already took (../known-sums.ts), else one pass
    return args.backend.makeTensorInfo([], 'float32', Float32Array.of(knownSumOfSquares(x!.dataId) ?? sumOfSquares(xv)));
  },
};
