/**
 * Transpose for the native backend: onnxruntime's Transpose for tensors of 64 Ki elements and more.
 *
 * Reference: tfjs-cpu's Transpose (an element-by-element copy through coordinate conversions), which
 * smaller tensors, an identity permutation and other dtypes still go to: below the threshold the
 * per-call cost of a native transpose (~30 µs) is not worth it.
 */
import { f32, type NativeKernel } from '../kernel-util.js';

const NATIVE_TRANSPOSE_MIN = 1 << 16;

export const transposeKernel: NativeKernel = {
  kernelName: 'Transpose',
  build: ({ ort, cpu }) => {
    const cpuTranspose = cpu('Transpose');
    return (args) => {
      const { x } = args.inputs;
      const { perm } = args.attrs as { perm: number[] };
      const xv = f32(args.backend, x!);
      if (!xv || xv.length < NATIVE_TRANSPOSE_MIN || perm.every((p, i) => p === i)) return cpuTranspose(args);
      return args.backend.makeTensorInfo(
        perm.map((p) => x!.shape[p]!),
        'float32',
        ort.transpose(xv, x!.shape, perm),
      );
    };
  },
};
