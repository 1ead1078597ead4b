/**
 * Neg (float32) for the native backend as a plain loop.
 *
 * Reference: tfjs-cpu's Neg (a closure per element), which other dtypes still go to.
 */
import { f32, type NativeKernel } from '../kernel-util.js';

export const negKernel: NativeKernel = {
  kernelName: 'Neg',
  build: ({ cpu }) => {
    const cpuNeg = cpu('Neg');
    return (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv) return cpuNeg(args);
      const out = new Float32Array(xv.length);
      for (let i = 0; i < xv.length; i++) out[i] = -xv[i]!;
      return args.backend.makeTensorInfo([...x!.shape], 'float32', out);
    };
  },
};
