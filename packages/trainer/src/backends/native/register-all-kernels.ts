/**
 * Every kernel of the `native` backend, registered under its name (tfjs style:
 * register_all_kernels.ts over kernels/<Op>.ts).
 *
 * The backend starts as a copy of tfjs-cpu's kernel set; each kernel listed here replaces the cpu one
 * of its name and keeps it as its reference and fallback (kernels/*.ts say which cases fall back):
 *
 *   BatchMatMul, _FusedMatMul  onnxruntime Gemm / MatMul, transpose flags read in place
 *   Transpose                  onnxruntime Transpose from 64 Ki elements
 *   Add, Sub, Multiply, RealDiv, Exp, Sigmoid, Log, Softmax
 *                              onnxruntime from 32 Ki elements, typed-array loops below
 *   SplitV, Slice, Neg, Square, Sqrt, Rsqrt, Floor, Sum / Max / Mean over trailing axes,
 *   GatherV2, PadV2, UnsortedSegmentSum
 *                              typed-array loops and block copies (tfjs-cpu calls a closure per element)
 *   ZerosLike                  zeros in an array of the pool's (AdamW's moments, then updated in place)
 *   CllamaAdamW, CllamaHeadSoftmax, CllamaHeadLossGrad, CllamaSumOfSquares, CllamaDecoderLayer(+Grad)
 *                              the trainer's fused kernels (contracts in src/kernel-names.ts); producers
 *                              that know a result's Σ x² (CllamaHeadLossGrad, UnsortedSegmentSum) leave
 *                              it for CllamaSumOfSquares (known-sums.ts)
 */
import * as tf from '@tensorflow/tfjs-core';
import { cpuKernel, type Alloc, type KernelFn, type NativeKernel } from './kernel-util.js';
import type { OrtRuntime } from './ort.js';
import { batchMatMulKernel } from './kernels/BatchMatMul.js';
import { binaryKernels } from './kernels/binary.js';
import { adamwKernel } from './kernels/CllamaAdamW.js';
import { registerDecoderLayerKernels } from './kernels/CllamaDecoderLayer.js';
import { headLossGradKernel } from './kernels/CllamaHeadLossGrad.js';
import { headSoftmaxKernel } from './kernels/CllamaHeadSoftmax.js';
import { sumOfSquaresKernel } from './kernels/CllamaSumOfSquares.js';
import { fusedMatMulKernel } from './kernels/_FusedMatMul.js';
import { gatherV2Kernel } from './kernels/GatherV2.js';
import { negKernel } from './kernels/Neg.js';
import { ortUnaryKernels } from './kernels/ort-unary.js';
import { padV2Kernel } from './kernels/PadV2.js';
import { reduceKernels } from './kernels/reduce.js';
import { sliceKernel } from './kernels/Slice.js';
import { softmaxKernel } from './kernels/Softmax.js';
import { splitVKernel } from './kernels/SplitV.js';
import { transposeKernel } from './kernels/Transpose.js';
import { unaryKernels } from './kernels/unary.js';
import { unsortedSegmentSumKernel } from './kernels/UnsortedSegmentSum.js';
import { zerosLikeKernel } from './kernels/ZerosLike.js';

/** The replacements of tfjs-cpu kernels and the fused kernels, in registration order. */
export const NATIVE_KERNELS: readonly NativeKernel[] = [
  batchMatMulKernel,
  fusedMatMulKernel,
  transposeKernel,
  unsortedSegmentSumKernel,
  ...binaryKernels,
  ...ortUnaryKernels,
  softmaxKernel,
  sumOfSquaresKernel,
  headSoftmaxKernel,
  headLossGradKernel,
  splitVKernel,
  sliceKernel,
  ...unaryKernels,
  ...reduceKernels,
  gatherV2Kernel,
  padV2Kernel,
  adamwKernel,
  negKernel,
  zerosLikeKernel,
];

/**
 * Registers tfjs-cpu's kernels under `backendName` (those not replaced), then NATIVE_KERNELS and the
 * decoder layer's two kernels, running on `ort`. tfjs-cpu's kernels must be registered already.
 */
export function registerAllKernels(backendName: string, ort: OrtRuntime, alloc: Alloc): void {
  const replaced = new Set(NATIVE_KERNELS.map((k) => k.kernelName));
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!replaced.has(k.kernelName)) tf.registerKernel({ ...k, backendName });
  }
  const ctx = { ort, alloc, cpu: cpuKernel };
  for (const k of NATIVE_KERNELS) {
    const kernelFunc: KernelFn = k.build(ctx);
    tf.registerKernel({ kernelName: k.kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  // a decoder layer's forward and backward as one ORT graph each (src/model/fused-layer.ts runs them)
  registerDecoderLayerKernels(ort, backendName);
}
