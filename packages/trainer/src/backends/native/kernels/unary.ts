/**
 * Square, Sqrt, Rsqrt, Floor (float32) for the native backend as plain loops, with tfjs-cpu's formulas.
 *
 * Reference: tfjs-cpu's kernels, which call a closure per element; they still take other dtypes.
 */
import { f32, freshArray, type Alloc, type NativeKernel } from '../kernel-util.js';

export type UnaryOp = 'Square' | 'Sqrt' | 'Rsqrt' | 'Floor';

export function unary(op: UnaryOp, x: Float32Array, alloc: Alloc = freshArray): Float32Array {
  const out = alloc(x.length);
  const n = x.length;
  switch (op) {
    case 'Square':
      for (let i = 0; i < n; i++) out[i] = x[i]! * x[i]!;
      break;
    case 'Sqrt':
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!);
      break;
    case 'Rsqrt':
      for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!);
      break;
    case 'Floor':
      for (let i = 0; i < n; i++) out[i] = Math.floor(x[i]!);
      break;
  }
  return out;
}

export const unaryKernels: NativeKernel[] = (['Square', 'Sqrt', 'Rsqrt', 'Floor'] as const).map((op) => ({
  kernelName: op,
  build: ({ alloc, cpu }) => {
    const cpuOp = cpu(op);
    return (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv) return cpuOp(args);
      return args.backend.makeTensorInfo([...x!.shape], 'float32', unary(op, xv, alloc));
    };
  },
}));
