/**
 * The `native` tfjs backend: tfjs's pure-JS `cpu` backend with its GEMM-shaped kernels run by
 * onnxruntime-node.
 *
 * Tensors live where the cpu backend keeps them, in ordinary JS typed arrays (no 32-bit wasm heap:
 * models past ~100 M parameters fit, up to the machine's memory). Every cpu kernel is registered again
 * under the name `native`; these are replaced:
 *
 *   BatchMatMul (tf.matMul and every matMul in the gradients, transpose flags included)
 *                 → ONNX Gemm (2-D; also a batch of A rows against one B, folded into M) or MatMul
 *                   over equal batch dimensions; broadcasting shapes stay on the cpu kernel
 *   _FusedMatMul  → the same product, then the cpu kernels for bias and activation
 *   Transpose     → ONNX Transpose for tensors of 64 Ki elements and more
 *   Add, Sub, Multiply, RealDiv (broadcasting), Exp, Sigmoid, Log
 *                 → ONNX Add/Sub/Mul/Div/Exp/Sigmoid/Log from 32 Ki elements, typed-array loops below
 *                   (src/native/elementwise.ts): tfjs-cpu's broadcast path indexes element by element,
 *                   which made it most of a training step
 *   Softmax (last axis), SplitV, Slice, Neg, Square, Sqrt, Rsqrt, Floor, and Sum / Max / Mean over
 *                 trailing axes → typed-array loops (tfjs-cpu calls a closure per element)
 *   GatherV2, PadV2 → slice / row copies (src/native/gather.ts, pad.ts)
 *   Softmax       → ONNX Softmax from 32 Ki elements
 *   CllamaAdamW, CllamaHeadSoftmax, CllamaSumOfSquares → fused kernels (src/native/fused.ts): the
 *                   optimizer's update in one pass; the loss head's product, softmax and log-sum-exp in
 *                   one ORT call; the gradient norm's Σ g² without writing g² out
 *   UnsortedSegmentSum (the embedding gradient) → one pass over the rows in JS; tfjs-cpu's kernel
 *                   runs a mask-and-sum per segment, O(vocabulary × tokens), minutes on a real vocab
 *   CllamaDecoderLayer, CllamaDecoderLayerGrad → a whole decoder layer's forward / backward as one
 *                   ORT graph each (src/native/decoder-layer.ts)
 *
 * through src/native/ort.ts (synchronous native calls on the arrays in place). Elementwise kernels
 * stay the cpu backend's JS loops. Non-float32 inputs go to the cpu kernels.
 */
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import {
  broadcastBinary,
  reduceRows,
  sliceBlocks,
  softmaxRows,
  splitAxis,
  unary,
  type Alloc,
  type BinaryOp,
  type ReduceOp,
  type UnaryOp,
} from './elementwise.js';
import { ArrayPool } from './pool.js';
import { ADAMW_KERNEL, adamwUpdate, HEAD_SOFTMAX_KERNEL, SUM_OF_SQUARES_KERNEL, sumOfSquares, type AdamWKernelAttrs } from './fused.js';
import type { OrtRuntime } from './ort.js';
import { registerDecoderLayerKernels } from './decoder-layer.js';
import { gatherKernel } from './gather.js';
import { padKernel } from './pad.js';
import { f32, prod, type CpuBackend, type KernelFn } from './kernel-util.js';

export const NATIVE_BACKEND_NAME = 'native';

/** Below this many elements the per-call cost of a native transpose (~30 µs) is not worth it. */
const NATIVE_TRANSPOSE_MIN = 1 << 16;
/** Elementwise ops this large go to ORT's vectorised kernels; smaller ones stay in JS loops. */
const NATIVE_ELEMENTWISE_MIN = 1 << 15;

/** Bytes of freed output arrays kept for reuse (src/native/pool.ts). */
const POOL_BYTES = Math.min(1024 ** 3, totalmem() / 16);

const UNARY: UnaryOp[] = ['Square', 'Sqrt', 'Rsqrt', 'Floor'];
const REDUCE: ReduceOp[] = ['Sum', 'Max', 'Mean'];

function cpuKernel(name: string): KernelFn {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`tfjs-backend-cpu has no ${name} kernel`);
  return k.kernelFunc as unknown as KernelFn;
}

/** op(A) @ op(B) natively when the shapes allow it, else undefined (the caller falls back to cpu). */
function nativeMatMul(ort: OrtRuntime, backend: CpuBackend, a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): tf.TensorInfo | undefined {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!av || !bv) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const n = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if ((transB ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return undefined; // let the cpu kernel word the error
  const aBatchDims = a.shape.slice(0, -2);
  const bBatchDims = b.shape.slice(0, -2);
  const aBatch = prod(aBatchDims);
  const bBatch = prod(bBatchDims);
  if (m * n * k === 0) return undefined;
  let out: Float32Array;
  let batchDims: number[];
  if (aBatch === bBatch && (ra === rb || aBatch === 1)) {
    batchDims = ra >= rb ? aBatchDims : bBatchDims;
    out = aBatch === 1 ? ort.gemm(av, bv, m, n, k, transA, transB) : ort.batchGemm(av, bv, aBatch, m, n, k, transA, transB);
  } else if (bBatch === 1 && !transA) {
    // the same B for every batch of A: one GEMM with the batches stacked as rows
    batchDims = aBatchDims;
    out = ort.gemm(av, bv, aBatch * m, n, k, false, transB);
  } else {
    return undefined;
  }
  return backend.makeTensorInfo([...batchDims, m, n], 'float32', out);
}

function registerKernel(name: string, kernelFunc: KernelFn): void {
  tf.registerKernel({ kernelName: name, backendName: NATIVE_BACKEND_NAME, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/**
 * Registers the `native` backend (tfjs-backend-cpu's MathBackendCPU + its kernels + the native
 * overrides above). Idempotent; call only once onnxruntime-node has loaded.
 */
export async function registerNativeBackend(ort: OrtRuntime): Promise<void> {
  if (tf.findBackendFactory(NATIVE_BACKEND_NAME)) return;
  const cpu = await import('@tensorflow/tfjs-backend-cpu'); // registers the cpu kernels we copy
  // output arrays for the loop kernels: wherever ORT's outputs come from (the backend's pool, once created)
  const alloc: Alloc = (length) => ort.alloc(length);
  /** tfjs-cpu's backend with its data's arrays recycled through the pool (src/native/pool.ts). */
  class NativeBackend extends cpu.MathBackendCPU {
    readonly pool = new ArrayPool(POOL_BYTES);

    override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object {
      this.pool.registered(values);
      return super.write(values, shape, dtype);
    }

    override move(dataId: object, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
      this.pool.registered(values);
      super.move(dataId, values, shape, dtype, refCount);
    }

    override readSync(dataId: object): tf.backend_util.BackendValues {
      this.pool.escaped(this.data.get(dataId)?.values);
      return super.readSync(dataId);
    }

    override disposeData(dataId: object, force = false): boolean {
      const values = this.data.get(dataId)?.values;
      const done = super.disposeData(dataId, force);
      if (values && !this.data.has(dataId)) this.pool.released(values);
      return done;
    }

    override dispose(): void {
      this.pool.clear();
      super.dispose();
    }
  }
  tf.registerBackend(
    NATIVE_BACKEND_NAME,
    () => {
      const backend = new NativeBackend();
      // its first write prints "install our node backend" advice, which does not apply here
      (backend as unknown as { firstUse: boolean }).firstUse = false;
      ort.alloc = (length) => backend.pool.alloc(length);
      return backend;
    },
    0,
  );
  const binary: BinaryOp[] = ['Add', 'Sub', 'Multiply', 'RealDiv'];
  const overridden = new Set<string>([
    'BatchMatMul',
    'GatherV2',
    'PadV2',
    '_FusedMatMul',
    'Transpose',
    'UnsortedSegmentSum',
    'Softmax',
    'SplitV',
    'Exp',
    'Sigmoid',
    'Log',
    'Slice',
    'Neg',
    ...binary,
    ...UNARY,
    ...REDUCE,
  ]);
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!overridden.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND_NAME });
  }
  const cpuBatchMatMul = cpuKernel('BatchMatMul');
  const cpuFused = cpuKernel('_FusedMatMul');
  const cpuTranspose = cpuKernel('Transpose');
  const cpuAdd = cpuKernel('Add');
  const cpuSegmentSum = cpuKernel('UnsortedSegmentSum');

  registerKernel('BatchMatMul', (args) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB) ?? cpuBatchMatMul(args);
  });

  registerKernel('_FusedMatMul', (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    if (preluActivationWeights || (activation && activation !== 'linear')) return cpuFused(args);
    const product = nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB);
    if (!product) return cpuFused(args);
    if (!bias) return product;
    const out = cpuAdd({ inputs: { a: product, b: bias }, backend: args.backend }) as tf.TensorInfo;
    args.backend.disposeData(product.dataId);
    return out;
  });

  registerKernel('Transpose', (args) => {
    const { x } = args.inputs;
    const { perm } = args.attrs as { perm: number[] };
    const xv = f32(args.backend, x!);
    if (!xv || xv.length < NATIVE_TRANSPOSE_MIN || perm.every((p, i) => p === i)) return cpuTranspose(args);
    return args.backend.makeTensorInfo(
      perm.map((p) => x!.shape[p]!),
      'float32',
      ort.transpose(xv, x!.shape, perm),
    );
  });

  registerKernel('UnsortedSegmentSum', (args) => {
    const { x, segmentIds } = args.inputs;
    const { numSegments } = args.attrs as { numSegments: number };
    const xv = f32(args.backend, x!);
    const ids = args.backend.data.get(segmentIds!.dataId).values;
    if (!xv || segmentIds!.shape.length !== 1 || !(ids instanceof Int32Array)) return cpuSegmentSum(args);
    const width = xv.length / ids.length;
    const out = alloc(numSegments * width).fill(0);
    for (let r = 0; r < ids.length; r++) {
      const seg = ids[r]!;
      if (seg < 0 || seg >= numSegments) continue; // TF drops out-of-range ids
      const src = r * width;
      const dst = seg * width;
      for (let j = 0; j < width; j++) out[dst + j]! += xv[src + j]!;
    }
    return args.backend.makeTensorInfo([numSegments, ...x!.shape.slice(1)], 'float32', out);
  });

  const onnxBinary: Record<BinaryOp, string> = { Add: 'Add', Sub: 'Sub', Multiply: 'Mul', RealDiv: 'Div' };
  for (const op of binary) {
    const cpuOp = cpuKernel(op);
    registerKernel(op, (args) => {
      const { a, b } = args.inputs;
      const av = f32(args.backend, a!);
      const bv = f32(args.backend, b!);
      if (!av || !bv) return cpuOp(args);
      const shape = tf.backend_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
      if (prod(shape) >= NATIVE_ELEMENTWISE_MIN) {
        return args.backend.makeTensorInfo(shape, 'float32', ort.elementwise(onnxBinary[op], av, a!.shape, bv, b!.shape, shape));
      }
      const r = broadcastBinary(op, av, a!.shape, bv, b!.shape)!;
      return args.backend.makeTensorInfo(r.shape, 'float32', r.values);
    });
  }
  for (const [op, onnxOp] of [
    ['Exp', 'Exp'],
    ['Sigmoid', 'Sigmoid'],
    ['Log', 'Log'],
  ] as const) {
    const cpuOp = cpuKernel(op);
    registerKernel(op, (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv || xv.length < NATIVE_ELEMENTWISE_MIN) return cpuOp(args);
      return args.backend.makeTensorInfo([...x!.shape], 'float32', ort.elementwise(onnxOp, xv, x!.shape, undefined, [], [...x!.shape]));
    });
  }

  const cpuSoftmax = cpuKernel('Softmax');
  registerKernel('Softmax', (args) => {
    const { logits } = args.inputs;
    const { dim } = args.attrs as { dim: number };
    const xv = f32(args.backend, logits!);
    const rank = logits!.shape.length;
    if (!xv || (dim !== -1 && dim !== rank - 1) || rank === 0) return cpuSoftmax(args);
    const shape = [...logits!.shape];
    // ONNX Softmax (opset 13+) is over the last axis
    if (xv.length >= NATIVE_ELEMENTWISE_MIN) return args.backend.makeTensorInfo(shape, 'float32', ort.elementwise('Softmax', xv, shape, undefined, [], shape));
    return args.backend.makeTensorInfo(shape, 'float32', softmaxRows(xv, logits!.shape[rank - 1]!));
  });

  // the gradient norm's Σ g² per tensor, without writing g² out (src/train/gradients.ts)
  registerKernel(SUM_OF_SQUARES_KERNEL, (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x!);
    if (!xv) throw new Error(`${SUM_OF_SQUARES_KERNEL}: x must be a float32 tensor`);
    return args.backend.makeTensorInfo([], 'float32', Float32Array.of(sumOfSquares(xv)));
  });

  // the loss head's product, softmax and log-sum-exp in one call (src/model/lm-head-loss.ts)
  registerKernel(HEAD_SOFTMAX_KERNEL, (args) => {
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
  });

  const cpuSplit = cpuKernel('SplitV');
  registerKernel('SplitV', (args) => {
    const { x } = args.inputs;
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const xv = f32(args.backend, x!);
    if (!xv) return cpuSplit(args);
    const ax = tf.util.parseAxisParam(axis, x!.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    return splitAxis(xv, x!.shape, ax, sizes, alloc).map((values, i) => {
      const shape = [...x!.shape];
      shape[ax] = sizes[i]!;
      return args.backend.makeTensorInfo(shape, 'float32', values);
    });
  });

  const cpuSlice = cpuKernel('Slice');
  registerKernel('Slice', (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x!);
    if (!xv) return cpuSlice(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return args.backend.makeTensorInfo(sz, 'float32', sliceBlocks(xv, x!.shape, b, sz, alloc));
  });

  for (const op of UNARY) {
    const cpuOp = cpuKernel(op);
    registerKernel(op, (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv) return cpuOp(args);
      return args.backend.makeTensorInfo([...x!.shape], 'float32', unary(op, xv, alloc));
    });
  }

  // reductions over the trailing axes (rows of a contiguous block); others go to the cpu kernels
  for (const op of REDUCE) {
    const cpuOp = cpuKernel(op);
    registerKernel(op, (args) => {
      const { x } = args.inputs;
      // Max names its axes `reductionIndices`, Sum and Mean `axis`
      const { axis, reductionIndices, keepDims } = args.attrs as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
      const xv = f32(args.backend, x!);
      const rank = x!.shape.length;
      const axes = tf.util.parseAxisParam((axis ?? reductionIndices)!, x!.shape).sort((p, q) => p - q);
      if (!xv || rank === 0 || axes.length === 0 || axes.some((ax, i) => ax !== rank - axes.length + i)) return cpuOp(args);
      const kept = x!.shape.slice(0, rank - axes.length);
      const rowLength = prod(x!.shape.slice(rank - axes.length));
      if (rowLength === 0) return cpuOp(args);
      const shape = keepDims ? [...kept, ...axes.map(() => 1)] : kept;
      return args.backend.makeTensorInfo(shape, 'float32', reduceRows(op, xv, rowLength));
    });
  }

  registerKernel('GatherV2', gatherKernel(cpuKernel('GatherV2'), alloc));
  registerKernel('PadV2', padKernel(cpuKernel('PadV2'), alloc));

  // a decoder layer's forward and backward as one ORT graph each (src/model/fused-layer.ts runs them)
  registerDecoderLayerKernels(ort, NATIVE_BACKEND_NAME);

  // AdamW in one pass (src/train/adamw.ts runs it when the kernel is there)
  registerKernel(ADAMW_KERNEL, (args) => {
    const { p, g, m, v } = args.inputs;
    const values = [p, g, m, v].map((t) => f32(args.backend, t!));
    if (values.some((x) => !x) || values.some((x) => x!.length !== values[0]!.length)) {
      throw new Error(`${ADAMW_KERNEL}: p, g, m and v must be float32 tensors of one shape`);
    }
    const r = adamwUpdate(values[0]!, values[1]!, values[2]!, values[3]!, args.attrs as unknown as AdamWKernelAttrs, alloc);
    return [r.p, r.m, r.v].map((data) => args.backend.makeTensorInfo([...p!.shape], 'float32', data));
  });

  const cpuNeg = cpuKernel('Neg');
  registerKernel('Neg', (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x!);
    if (!xv) return cpuNeg(args);
    const out = new Float32Array(xv.length);
    for (let i = 0; i < xv.length; i++) out[i] = -xv[i]!;
    return args.backend.makeTensorInfo([...x!.shape], 'float32', out);
  });
}
