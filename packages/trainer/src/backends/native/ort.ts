/**
 * onnxruntime-node as a synchronous GEMM library.
 *
 * tfjs kernels are synchronous; onnxruntime-node's public `InferenceSession.run()` is async, but it
 * only wraps its native binding's `run()` — itself synchronous, executing on the calling thread with
 * ORT's own intra-op thread pool — in a setImmediate. This module calls that binding directly, so a
 * GEMM is one native call on Float32Arrays in ordinary JS memory: no worker, no SharedArrayBuffer,
 * no copy of the inputs (ORT reads the arrays in place); ORT writes the output into a Float32Array
 * given as a pre-allocated output (the binding also returns a copy of it, which is dropped).
 *
 * One session per op signature (Gemm transA/transB; MatMul rank/transposes), every dimension
 * symbolic, built on first use from the bytes of src/backends/native/onnx-graph.ts.
 *
 * onnxruntime-node is optional: `loadOrt` reports why it is unusable instead of throwing (not
 * installed, its binding missing or of an unexpected shape, or CLLAMA_NATIVE_DISABLE=1), and the
 * backend falls back, saying so.
 */
import { availableParallelism } from 'node:os';
import { batchMatMulModel, elementwiseModel, gemmModel, headSoftmaxModel, transposeModel } from './onnx-graph.js';

/** C = op(A)·op(B), C [m, n]; A is [m, k] ([k, m] when transA), B [k, n] ([n, k] when transB). */
export type GemmRunner = (a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean) => Float32Array;
/** The same for `batch` independent products stored one after another. */
export type BatchGemmRunner = (
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
) => Float32Array;

/** X of shape `shape` transposed by `perm`. */
export type TransposeRunner = (x: Float32Array, shape: readonly number[], perm: readonly number[]) => Float32Array;

/** One elementwise ONNX op on one or two float32 tensors; `outShape` is the (broadcast) result's shape. */
export type ElementwiseRunner = (
  op: string,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array | undefined,
  bShape: readonly number[],
  outShape: number[],
) => Float32Array;

/** A graph input: float32 values (or bool / uint8 bytes, for masks; int32, for indices) in place, with their dimensions. */
export interface GraphTensor {
  data: Float32Array | Uint8Array | Int32Array;
  dims: readonly number[];
  /** For byte data: ONNX bool (the default) or uint8. */
  type?: 'bool' | 'uint8';
}

/**
 * Runs the graph `build()` makes (one session per `key`, built on first use) on `inputs`, writing the
 * float32 `outputs` (name → dimensions) into arrays from `alloc`.
 */
export type GraphRunner = (
  key: string,
  build: () => Uint8Array,
  inputs: Record<string, GraphTensor>,
  outputs: Record<string, readonly number[]>,
) => Record<string, Float32Array>;

/** softmax(h · wᵀ) and its rows' log-sum-exp, for h [rows, hidden] and w [cols, hidden]; the product stays in ORT. */
export type HeadSoftmaxRunner = (h: Float32Array, w: Float32Array, rows: number, cols: number, hidden: number) => { probs: Float32Array; lse: Float32Array };

export interface OrtRuntime {
  /** Where output arrays come from (the native backend sets its recycling pool; default: new arrays). */
  alloc: (length: number) => Float32Array;
  headSoftmax: HeadSoftmaxRunner;
  graph: GraphRunner;
  gemm: GemmRunner;
  batchGemm: BatchGemmRunner;
  transpose: TransposeRunner;
  elementwise: ElementwiseRunner;
  threads: number;
  version: string;
  dispose(): void;
}

export type OrtLoad = { ok: true; runtime: OrtRuntime } | { ok: false; reason: string };

/** The parts of onnxruntime-node's native binding used here (dist/binding.js, not its public API). */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): Record<string, { data: Float32Array }>;
  dispose(): void;
}
interface OrtModules {
  Tensor: new (type: 'float32' | 'uint8' | 'bool' | 'int32', data: Float32Array | Uint8Array | Int32Array, dims: readonly number[]) => { data: Float32Array };
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
  version: string;
}

async function importOrt(): Promise<OrtModules> {
  // computed specifiers keep bundlers from resolving the optional package at build time
  const pkg = 'onnxruntime-node';
  const main = (await import(/* @vite-ignore */ pkg)) as Record<string, unknown> & { default?: Record<string, unknown> };
  const api = (main.default ?? main) as Record<string, unknown>;
  const bindingModule = (await import(/* @vite-ignore */ `${pkg}/dist/binding.js`)) as Record<string, unknown> & { default?: Record<string, unknown> };
  const b = (bindingModule.default ?? bindingModule) as Record<string, unknown>;
  const binding = b.binding as OrtModules['binding'] | undefined;
  if (typeof api.Tensor !== 'function' || typeof b.initOrt !== 'function' || typeof binding?.InferenceSession !== 'function') {
    throw new Error('its native binding does not have the expected shape (onnxruntime-node 1.2x–1.3x is known to work)');
  }
  const env = api.env as { versions?: { node?: string; common?: string } } | undefined;
  return {
    Tensor: api.Tensor as OrtModules['Tensor'],
    binding,
    initOrt: b.initOrt as () => void,
    version: env?.versions?.node ?? env?.versions?.common ?? 'unknown',
  };
}

export interface LoadOrtOptions {
  /** ORT intra-op threads (default CLLAMA_NATIVE_THREADS, else every core). */
  threads?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads onnxruntime-node and builds the runtime, or says why it cannot. Long (~140 lines) on purpose:
 * every runner is a few-line closure over the same loaded modules, session cache, session options and
 * the output-ownership probe at the end; split apart they would pass those four around instead.
 */
export async function loadOrt(opts: LoadOrtOptions = {}): Promise<OrtLoad> {
  const env = opts.env ?? process.env;
  if (env.CLLAMA_NATIVE_DISABLE === '1') return { ok: false, reason: 'CLLAMA_NATIVE_DISABLE=1 is set' };
  let mods: OrtModules;
  try {
    mods = await importOrt();
    mods.initOrt();
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0]!;
    const missing = /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(msg);
    return { ok: false, reason: missing ? 'onnxruntime-node is not installed (npm install onnxruntime-node)' : `onnxruntime-node cannot be loaded: ${msg}` };
  }
  const threads = opts.threads ?? (Number(env.CLLAMA_NATIVE_THREADS) || availableParallelism());
  const sessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // no arena: ORT's arena keeps its high-water mark for the life of the session, on top of tfjs's tensors
    enableCpuMemArena: false,
    enableMemPattern: false,
    // ORT's pool threads spin between runs by default; here JS kernels run between the GEMMs, and a
    // spinning pool would take their core
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const sessions = new Map<string, NativeSession>();
  const session = (key: string, build: () => Uint8Array, options: object = {}): NativeSession => {
    let s = sessions.get(key);
    if (!s) {
      const bytes = build();
      s = new mods.binding.InferenceSession();
      s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, { ...sessionOptions, ...options });
      sessions.set(key, s);
    }
    return s;
  };
  const run = (
    s: NativeSession,
    a: Float32Array,
    aDims: readonly number[],
    b: Float32Array | undefined,
    bDims: readonly number[],
    outDims: number[],
  ): Float32Array => {
    const out = runtime.alloc(outDims.reduce((x, y) => x * y, 1));
    const feeds: Record<string, unknown> = { A: new mods.Tensor('float32', a, aDims) };
    if (b) feeds.B = new mods.Tensor('float32', b, bDims);
    const result = s.run(feeds, { Y: new mods.Tensor('float32', out, outDims) }, {});
    return ownOutput(out, result.Y?.data);
  };
  // ORT writes a pre-allocated output in place, and onnxruntime-node 1.30's binding then returns a copy
  // of it as well: keep ours (it may come from the backend's recycling pool) and drop the copy, once a
  // probe has shown that this binding really writes in place; otherwise use what it returns.
  let writesInPlace = false;
  const ownOutput = (out: Float32Array, returned: Float32Array | undefined): Float32Array => (writesInPlace || !returned || returned === out ? out : returned);
  const gemm: GemmRunner = (a, b, m, n, k, transA, transB) =>
    run(
      session(`gemm${+transA}${+transB}`, () => gemmModel(transA, transB)),
      a,
      transA ? [k, m] : [m, k],
      b,
      transB ? [n, k] : [k, n],
      [m, n],
    );
  const batchGemm: BatchGemmRunner = (a, b, batch, m, n, k, transA, transB) =>
    run(
      session(`bmm${+transA}${+transB}`, () => batchMatMulModel(transA, transB, 3)),
      a,
      transA ? [batch, k, m] : [batch, m, k],
      b,
      transB ? [batch, n, k] : [batch, k, n],
      [batch, m, n],
    );
  const transpose: TransposeRunner = (x, shape, perm) =>
    run(
      session(`t${perm.join(',')}`, () => transposeModel(perm)),
      x,
      shape,
      undefined,
      [],
      perm.map((p) => shape[p]!),
    );
  const elementwise: ElementwiseRunner = (op, a, aShape, b, bShape, outShape) => {
    const ranks = b ? [aShape.length, bShape.length] : [aShape.length];
    return run(
      session(`${op}${ranks.join(',')}`, () => elementwiseModel(op, ranks)),
      a,
      aShape,
      b,
      bShape,
      outShape,
    );
  };
  const headSoftmax: HeadSoftmaxRunner = (h, w, rows, cols, hidden) => {
    const probs = runtime.alloc(rows * cols);
    const lse = runtime.alloc(rows);
    // the [rows, cols] product is ORT's own intermediate: this session keeps its arena, so that buffer
    // is reused from call to call instead of fresh pages each time
    const r = session('headSoftmax', headSoftmaxModel, { enableCpuMemArena: true }).run(
      { A: new mods.Tensor('float32', h, [rows, hidden]), B: new mods.Tensor('float32', w, [cols, hidden]) },
      { Y: new mods.Tensor('float32', probs, [rows, cols]), L: new mods.Tensor('float32', lse, [rows, 1]) },
      {},
    );
    return { probs: ownOutput(probs, r.Y?.data), lse: ownOutput(lse, r.L?.data) };
  };
  const graph: GraphRunner = (key, build, inputs, outputs) => {
    const feeds: Record<string, unknown> = {};
    for (const [name, t] of Object.entries(inputs))
      feeds[name] = new mods.Tensor(t.data instanceof Uint8Array ? (t.type ?? 'bool') : t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.dims);
    const outs: Record<string, Float32Array> = {};
    const fetches: Record<string, unknown> = {};
    for (const [name, dims] of Object.entries(outputs)) {
      outs[name] = runtime.alloc(dims.reduce((a, b) => a * b, 1));
      fetches[name] = new mods.Tensor('float32', outs[name], dims);
    }
    // a layer's intermediates come from the session's arena: reused from call to call, where fresh
    // pages for every [tokens, intermediate] value cost as much as the pass over it
    const r = session(key, build, { enableCpuMemArena: true }).run(feeds, fetches, {});
    for (const name of Object.keys(outs)) outs[name] = ownOutput(outs[name]!, r[name]?.data);
    return outs;
  };
  const runtime: OrtRuntime = {
    alloc: (length) => new Float32Array(length),
    headSoftmax,
    graph,
    gemm,
    batchGemm,
    transpose,
    elementwise,
    threads,
    version: mods.version,
    dispose() {
      for (const s of sessions.values()) s.dispose();
      sessions.clear();
    },
  };
  const probe = new Float32Array([Number.NaN]);
  runtime.alloc = () => probe;
  runtime.gemm(Float32Array.of(3), Float32Array.of(5), 1, 1, 1, false, false);
  writesInPlace = probe[0] === 15;
  runtime.alloc = (length) => new Float32Array(length);
  return { ok: true, runtime };
}
