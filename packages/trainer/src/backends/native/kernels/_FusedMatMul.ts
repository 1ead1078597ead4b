/**
 * _FusedMatMul (matMul + bias + activation, as tf.fused.matMul and tfjs's own layers emit it) for the
 * native backend: the product as in BatchMatMul.ts, then tfjs-cpu's Add for the bias.
 *
 * Reference: tfjs-cpu's _FusedMatMul, which an activation other than linear, PReLU weights or a shape
 * the native product does not take still go to.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { NativeKernel } from '../kernel-util.js';
import { nativeMatMul } from './BatchMatMul.js';

export const fusedMatMulKernel: NativeKernel = {
  kernelName: '_FusedMatMul',
  build: ({ ort, cpu }) => {
    const cpuFused = cpu('_FusedMatMul');
    const cpuAdd = cpu('Add');
    return (args) => {
      const { a, b, bias, preluActivationWeights } = args.inputs;
      const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
      if (preluActivationWeights || (activation && activation !== 'linear')) return cpuFused(args);
      const product = nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB);
      if (!product) return cpuFused(args);
      if (!bias) return product;
      const out = cpuAdd({ inputs: { a: product, b: bias }, backend: args.backend }) as tf.TensorInfo;
      args.backend.disposeData(product.dataId);
      return out;
    };
  },
};
