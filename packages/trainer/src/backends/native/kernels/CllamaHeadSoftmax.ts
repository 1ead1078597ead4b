/**
 * CllamaHeadSoftmax (contract in src/kernel-names.ts) for the native backend: the loss head's product,
 * softmax and log-sum-exp for a chunk in one onnxruntime call (src/backends/native/onnx-graph.ts
 * headSoftmaxModel); the [n, V] logits never reach JS.
 *
 * Reference: the op chain in src/model/lm-head-loss.ts (headForward), which every other backend runs;
 * the model parity tests run both.
 */
import { HEAD_SOFTMAX_KERNEL } from '../../../kernel-names.js';
import { f32, type NativeKernel } from '../kernel-util.js';

export const headSoftmaxKernel: NativeKernel = {
  kernelName: HEAD_SOFTMAX_KERNEL,
  build:
    ({ ort }) =>
    (args) => {
      const { h, w } = args.inputs;
      const hv = f32(args.backend, h!);
      const wv = f32(args.backend, w!);
      if (!hv || !wv || h!.shape.length !== 2 || w!.shape.length !== 2 || h!.shape[1] !== w!.shape[1]) {
        throw new Error(`${HEAD_SOFTMAX_KERNEL}: h [n, H] and w [V, H] must be 2-D float32 tensors`);
      }
      const [rows, hidden] = h!.shape as [number, number];
      const cols = w!.shape[0]!;
      const { probs, lse } = ort.headSoftmax(hv, wv, rows, cols, hidden);
      return [args.backend.makeTensorInfo([rows, cols], 'float32', probs), args.backend.makeTensorInfo([rows, 1], 'float32', lse)];
    },
};
