/**
 * Exp, Sigmoid, Log (float32) for the native backend: onnxruntime's vectorised kernels from 32 Ki
 * elements.
 *
 * Reference: tfjs-cpu's kernels (a closure per element), which smaller tensors and other dtypes still
 * go to.
 */
import { f32, ORT_ELEMENTWISE_MIN, type NativeKernel } from '../kernel-util.js';

export const ortUnaryKernels: NativeKernel[] = (
  [
    ['Exp', 'Exp'],
    ['Sigmoid', 'Sigmoid'],
    ['Log', 'Log'],
  ] as const
).map(([op, onnxOp]) => ({
  kernelName: op,
  build: ({ ort, cpu }) => {
    const cpuOp = cpu(op);
    return (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv || xv.length < ORT_ELEMENTWISE_MIN) return cpuOp(args);
      return args.backend.makeTensorInfo([...x!.shape], 'float32', ort.elementwise(onnxOp, xv, x!.shape, undefined, [], [...x!.shape]));
    };
  },
}));
