/**
 * Softmax over the last axis for the native backend: onnxruntime's Softmax (opset 13+: the last axis)
 * from 32 Ki elements, a typed-array loop below.
 *
 * Reference: tfjs-cpu's Softmax (max-subtracted, as here), which another axis and other dtypes still
 * go to; it calls a closure per element.
 */
import { f32, ORT_ELEMENTWISE_MIN, type NativeKernel } from '../kernel-util.js';

/** Softmax over the last axis of rows of width `width` (max-subtracted, as tfjs-cpu). */
export function softmaxRows(x: Float32Array, width: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += width) {
    let max = -Infinity;
    for (let j = 0; j < width; j++) if (x[r + j]! > max) max = x[r + j]!;
    let sum = 0;
    for (let j = 0; j < width; j++) sum += out[r + j] = Math.exp(x[r + j]! - max);
    for (let j = 0; j < width; j++) out[r + j]! /= sum;
  }
  return out;
}

export const softmaxKernel: NativeKernel = {
  kernelName: 'Softmax',
  build: ({ ort, cpu }) => {
    const cpuSoftmax = cpu('Softmax');
    return (args) => {
      const { logits } = args.inputs;
      const { dim } = args.attrs as { dim: number };
      const xv = f32(args.backend, logits!);
      const rank = logits!.shape.length;
      if (!xv || (dim !== -1 && dim !== rank - 1) || rank === 0) return cpuSoftmax(args);
      const shape = [...logits!.shape];
      // ONNX Softmax (opset 13+) is over the last axis
      if (xv.length >= ORT_ELEMENTWISE_MIN) return args.backend.makeTensorInfo(shape, 'float32', ort.elementwise('Softmax', xv, shape, undefined, [], shape));
      return args.backend.makeTensorInfo(shape, 'float32', softmaxRows(xv, logits!.shape[rank - 1]!));
    };
  },
};
