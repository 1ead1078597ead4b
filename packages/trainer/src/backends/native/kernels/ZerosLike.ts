/**
 * ZerosLike (float32) for the native backend: zeros in an array of the pool's (../pool.ts).
 *
 * Reference: tfjs-cpu's ZerosLike (a fresh array), which other dtypes still go to. Why: AdamW's
 * moments start as zerosLike of their weight; an array of the pool's that only the moment's variable
 * holds is then updated in place by CllamaAdamW from the first step.
 */
import { prod, type NativeKernel } from '../kernel-util.js';

export const zerosLikeKernel: NativeKernel = {
  kernelName: 'ZerosLike',
  build: ({ alloc, cpu }) => {
    const cpuZerosLike = cpu('ZerosLike');
    return (args) => {
      const { x } = args.inputs;
      if (x!.dtype !== 'float32') return cpuZerosLike(args);
      return args.backend.makeTensorInfo([...x!.shape], 'float32', alloc(prod(x!.shape)).fill(0));
    };
  },
};
