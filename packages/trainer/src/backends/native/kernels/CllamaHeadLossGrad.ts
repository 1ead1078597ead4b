/**
 * CllamaHeadLossGrad (contract in src/kernel-names.ts) for the native backend: one chunk of the loss
 * head's forward together with its gradient, as one onnxruntime graph.
 *
 *   X = h wᵀ [n, V];  P = softmax(X);  lse = max(X) − log max(P)   (as CllamaHeadSoftmax)
 *   rowLoss = lse − X[i, t_i]
 *   dh = s ⊙ (P w − w[t])                       s = ∂loss/∂lse per row (weight / count)
 *   dw = acc + Pᵀ (s ⊙ h) − onehot(t)ᵀ (s ⊙ h)
 *
 * Reference: src/model/lm-head-loss.ts's chunk loop (forward, then the backward from the kept softmax),
 * which every other backend runs; test/native-backend.test.ts compares the two.
 *
 * Why: taken in the backward pass from a kept softmax, this head cost a [n, V] softmax returned by
 * onnxruntime-node (which copies every output into a fresh ArrayBuffer: ~0.6 ms per MB, 0.1 s for a
 * 1024 × 50k chunk), a transpose of d w, and a dense [V, H] one-hot part made by a segment sum and
 * subtracted in one more pass. Here P never leaves onnxruntime's arena, d w is written once, and the
 * one-hot part is n row updates in JS. The graph also returns Σ(Pᵀ(s ⊙ h) + acc)², which the
 * row updates correct into Σ dw², remembered for the gradient norm (../known-sums.ts).
 *
 * How this differs from the reference: the gradient is taken in the forward pass, before the caller's
 * dy is known (lm-head-loss.ts scales by dy, which is 1 in training), and the target logit is read off
 * X rather than recomputed as h · w[t]; sums run in another order (float32 rounding).
 */
import { HEAD_LOSS_GRAD_KERNEL, type HeadLossGradAttrs } from '../../../kernel-names.js';
import { f32, type NativeKernel } from '../kernel-util.js';
import { rememberSumOfSquares } from '../known-sums.js';
import { OnnxGraph } from '../onnx-graph.js';
import type { GraphTensor } from '../ort.js';

/**
 * The chunk's graph. Inputs h [n, H], w [V, H], t int32 [n], s [n, 1], and acc [V, H] when
 * `accumulate`; outputs loss [n, 1], dh [n, H], and when `wantW` g = Pᵀ (s ⊙ h) (+ acc) [V, H] and
 * ss = Σ g² (the one-hot part is left to the caller).
 */
export function headLossGraph(wantW: boolean, accumulate: boolean): Uint8Array {
  const g = new OnnxGraph();
  g.input('h', 2);
  g.input('w', 2);
  g.input('t', 1, 'int32');
  g.input('s', 2);
  if (accumulate) g.input('acc', 2);
  const x = g.op('Gemm', ['h', 'w'], { transB: 1 });
  const p = g.op('Softmax', [x], { axis: -1 });
  const lse = g.op('Sub', [g.op('ReduceMax', [x], { axes: [-1], keepdims: 1 }), g.op('Log', [g.op('ReduceMax', [p], { axes: [-1], keepdims: 1 })])]);
  const rows = g.op('Unsqueeze', ['t', g.ints([1])]);
  g.output('loss', g.op('Sub', [lse, g.op('GatherElements', [x, rows], { axis: 1 })]), 2);
  g.output('dh', g.op('Mul', [g.op('Sub', [g.op('MatMul', [p, 'w']), g.op('Gather', ['w', 't'], { axis: 0 })]), 's']), 2);
  if (wantW) {
    const hs = g.op('Mul', ['h', 's']);
    const dw = accumulate ? g.op('Gemm', [p, hs, 'acc'], { transA: 1, beta: { f: 1 } }) : g.op('Gemm', [p, hs], { transA: 1 });
    g.output('ss', g.op('ReduceSumSquare', [dw], { keepdims: 0 }), 0);
    g.output('g', dw, 2);
  }
  return g.bytes();
}

function sumRow(x: Float32Array, start: number, length: number): number {
  let s = 0;
  for (let j = start; j < start + length; j++) s += x[j]! * x[j]!;
  return s;
}

export const headLossGradKernel: NativeKernel = {
  kernelName: HEAD_LOSS_GRAD_KERNEL,
  build:
    ({ ort }) =>
    (args) => {
      const { inputs, backend } = args;
      const { wantW } = args.attrs as unknown as HeadLossGradAttrs;
      const hv = f32(backend, inputs.h!);
      const wv = f32(backend, inputs.w!);
      const sv = f32(backend, inputs.scale!);
      const tv = backend.data.get(inputs.targets!.dataId).values;
      const acc = inputs.acc && f32(backend, inputs.acc);
      const [n, hidden] = inputs.h!.shape as [number, number];
      const vocab = inputs.w!.shape[0]!;
      if (
        !hv ||
        !wv ||
        !sv ||
        !(tv instanceof Int32Array) ||
        inputs.h!.shape.length !== 2 ||
        inputs.w!.shape[1] !== hidden ||
        tv.length !== n ||
        sv.length !== n
      ) {
        throw new Error(`${HEAD_LOSS_GRAD_KERNEL}: h [n, H] and w [V, H] float32, targets int32 [n] and scale float32 [n] are needed`);
      }
      if (inputs.acc && (!acc || acc.length !== vocab * hidden)) throw new Error(`${HEAD_LOSS_GRAD_KERNEL}: acc must be float32 [${vocab}, ${hidden}]`);
      for (const t of tv) if (!(t >= 0 && t < vocab)) throw new Error(`${HEAD_LOSS_GRAD_KERNEL}: target ${t} is outside 0..${vocab - 1}`);
      const feeds: Record<string, GraphTensor> = {
        h: { data: hv, dims: [n, hidden] },
        w: { data: wv, dims: [vocab, hidden] },
        t: { data: tv, dims: [n] },
        s: { data: sv, dims: [n, 1] },
      };
      if (acc) feeds.acc = { data: acc, dims: [vocab, hidden] };
      const outputs: Record<string, number[]> = { loss: [n, 1], dh: [n, hidden] };
      if (wantW) Object.assign(outputs, { g: [vocab, hidden], ss: [] });
      const out = ort.graph(`${HEAD_LOSS_GRAD_KERNEL}:${wantW}:${!!acc}`, () => headLossGraph(wantW, !!acc), feeds, outputs);
      const result = [backend.makeTensorInfo([n], 'float32', out.loss), backend.makeTensorInfo([n, hidden], 'float32', out.dh)];
      if (!wantW) return result;
      const dw = out.g!;
      // the one-hot part, − s_i h_i on row t_i, and Σ dw² corrected over the rows it changes
      const rowsTouched = [...new Set(tv)];
      const rowSquares = () => rowsTouched.reduce((sum, r) => sum + sumRow(dw, r * hidden, hidden), 0);
      const before = rowSquares();
      for (let i = 0; i < n; i++) {
        const s = sv[i]!;
        if (s === 0) continue;
        const src = i * hidden;
        const dst = tv[i]! * hidden;
        for (let j = 0; j < hidden; j++) dw[dst + j] = dw[dst + j]! - Math.fround(hv[src + j]! * s);
      }
      const info = backend.makeTensorInfo([vocab, hidden], 'float32', dw);
      rememberSumOfSquares(info.dataId, Math.max(0, out.ss![0]! - before + rowSquares()));
      return [...result, info];
    },
};
