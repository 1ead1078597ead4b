/**
 * The GPU kit's `ortgpu` part: one LLaMA decoder layer's forward + backward as onnxruntime graphs (the
 * native backend's fused layer, @cllama/trainer's `decoderLayerOnnx`) on onnxruntime-node's own WebGPU
 * execution provider, beside its CPU EP — the route that would keep the native backend's layer graphs on
 * a GPU with no package besides onnxruntime-node (issue 24).
 *
 *   node kit.mjs ortgpu [--shape smollm,tinyllama|smoke] [--iters 10] [--cpu-iters 3] [--routes webgpu,cpu]
 *
 * Per shape (LoRA r 8 on all 7 projections, dropout 0.05 with fixed masks, batch 1):
 *   1. placement: ORT's profiler names the EP of every node; the native backend's graph (com.microsoft
 *      FusedMatMul) and its standard-op variant (Transpose + MatMul + Mul) are both checked on the
 *      WebGPU EP, and every node left on the CPU is listed by op;
 *   2. webgpu: the standard-op graphs; weights, x, dy and the rotary / mask tables are uploaded once
 *      (an Identity session whose outputs stay 'gpu-buffer'), the forward's outputs stay on the GPU and
 *      feed the backward (chained); the dropout masks come from the host each run, as a training step's
 *      fresh masks would. Time per forward + backward over `--iters` runs after a warm-up run (which
 *      compiles the shaders), ending with a read-back (the GPU's queue drained);
 *   3. cpu: the native backend's graphs on the CPU EP, all cores, as the native backend runs them;
 *   4. parity: the webgpu y, dx and 14 LoRA gradients read back through a session whose outputs are on
 *      the CPU (getData() on a gpu-buffer tensor aborts onnxruntime-node 1.30's process) against the CPU
 *      EP's: max |a − b| / max |b| per tensor, the worst over all; pass below 1e-3.
 *
 * RESULT lines: `ortgpu-placement`, `ortgpu` (msPerLayer per route), `ortgpu-parity`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { decoderLayerOnnx as L } from '@cllama/trainer';
import * as ort from 'onnxruntime-node';

type Args = (name: string, fallback: string) => string;
type Feeds = Record<string, ort.Tensor>;

const SHAPES: Record<string, { hidden: number; inter: number; heads: number; kvHeads: number; seq: number }> = {
  smollm: { hidden: 576, inter: 1536, heads: 9, kvHeads: 3, seq: 512 },
  tinyllama: { hidden: 2048, inter: 5632, heads: 32, kvHeads: 4, seq: 512 },
  // a few seconds on a software adapter (lavapipe): checks the part itself
  smoke: { hidden: 48, inter: 128, heads: 6, kvHeads: 2, seq: 16 },
};
const RANK = 8;
const DROPOUT = 0.05;
const PARITY_TOLERANCE = 1e-3;

const result = (r: Record<string, unknown>) => console.log(`RESULT ${JSON.stringify(r)}`);

function layerSpec(s: (typeof SHAPES)[string]): L.DecoderLayerSpec {
  return {
    hidden: s.hidden,
    intermediate: s.inter,
    heads: s.heads,
    kvHeads: s.kvHeads,
    eps: 1e-5,
    dropoutRate: DROPOUT,
    lora: L.PROJECTIONS.map((module) => ({ module, rank: RANK, scaling: 16 / RANK, dropout: true })),
  };
}

/** Uniform values in ±scale from a seeded LCG (one stream per tensor). */
function uniform(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
  }
  return out;
}

/** Every input of the backward graph (a superset of the forward's) for batch 1 × `seq`, on the host. */
function hostInputs(spec: L.DecoderLayerSpec, seq: number): { floats: Feeds; masks: Feeds } {
  const { hidden: h, heads, kvHeads } = spec;
  const d = h / heads;
  const groups = heads / kvHeads;
  const floats: Feeds = {};
  const masks: Feeds = {};
  let seed = 1;
  const put = (name: string, dims: number[], data: Float32Array) => (floats[name] = new ort.Tensor('float32', data, dims));
  put('x', [1, seq, h], uniform(seq * h, 1, seed++));
  put('dy', [1, seq, h], uniform(seq * h, 1, seed++));
  // HF's rotary tables, θ = 10000: cos / sin of t · θ^(−2j/D), the D/2 frequencies repeated
  const cos = new Float32Array(seq * d);
  const sin = new Float32Array(seq * d);
  for (let t = 0; t < seq; t++)
    for (let j = 0; j < d; j++) {
      const angle = t * 10000 ** (-(2 * (j % (d / 2))) / d);
      cos[t * d + j] = Math.cos(angle);
      sin[t * d + j] = Math.sin(angle);
    }
  put('cos', [seq, d], cos);
  put('sin', [seq, d], sin);
  // the causal mask as the layer graph reads it: [1, kvHeads, groups · T, T], 0 or −1e9 (the model's value)
  const bias = new Float32Array(kvHeads * groups * seq * seq);
  for (let row = 0; row < kvHeads * groups * seq; row++) for (let j = (row % seq) + 1; j < seq; j++) bias[row * seq + j] = -1e9;
  put('bias', [1, kvHeads, groups * seq, seq], bias);
  for (const n of L.NORMS)
    put(
      n,
      [h],
      Float32Array.from(uniform(h, 0.1, seed++), (v) => 1 + v),
    );
  for (const p of L.PROJECTIONS) {
    const [out, inF] = L.projectionShape(spec, p);
    put(p, [out, inF], uniform(out * inF, Math.sqrt(3 / inF), seed++));
  }
  for (const l of spec.lora) {
    const [out, inF] = L.projectionShape(spec, l.module);
    put(`${l.module}.lora_A`, [l.rank, inF], uniform(l.rank * inF, Math.sqrt(3 / inF), seed++));
    put(`${l.module}.lora_B`, [out, l.rank], uniform(out * l.rank, 0.02, seed++));
    const keep = uniform(seq * inF, 0.5, seed++);
    masks[`${l.module}.mask`] = new ort.Tensor(
      'bool',
      Uint8Array.from(keep, (u) => (u + 0.5 >= DROPOUT ? 1 : 0)),
      [1, seq, inF],
    );
  }
  return { floats, masks };
}

/** The gradients the backward returns: dx and every LoRA matrix's. */
function wanted(spec: L.DecoderLayerSpec): string[] {
  return ['x', ...spec.lora.flatMap((l) => [`${l.module}.lora_A`, `${l.module}.lora_B`])];
}

/** Identity for each named float input (`<name>` → `out.<name>`): moves values between the host and the GPU. */
function identityGraph(inputs: Record<string, number>): Uint8Array {
  const g = new L.OnnxGraph();
  for (const [name, rank] of Object.entries(inputs)) g.output(`out.${name}`, g.input(name, rank), rank);
  return g.bytes();
}

const ranksOf = (feeds: Feeds) => Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, t.dims.length]));
const pick = (feeds: Feeds, names: readonly string[]) => Object.fromEntries(names.filter((n) => n in feeds).map((n) => [n, feeds[n]!]));

/** The EP of every node of one run, from ORT's profiler: { provider → count } and the op types left on the CPU. */
async function placement(bytes: Uint8Array, feeds: Feeds): Promise<{ nodes: Record<string, number>; cpuOps: Record<string, number> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ortgpu-profile-'));
  try {
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['webgpu'],
      // errors only: the fused graph's partial placement is what this reports, not a warning to repeat
      logSeverityLevel: 3,
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'profile'),
      preferredOutputLocation: 'cpu',
    });
    const feedsFor = pick(feeds, session.inputNames);
    const out = await session.run(feedsFor);
    session.endProfiling();
    for (const t of Object.values(out)) t.dispose();
    await session.release();
    const nodes: Record<string, number> = {};
    const cpuOps: Record<string, number> = {};
    const seen = new Set<string>();
    for (const file of readdirSync(dir)) {
      for (const e of JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Array<{
        cat?: string;
        name?: string;
        args?: { op_name?: string; provider?: string };
      }>) {
        if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.provider || seen.has(e.name)) continue;
        seen.add(e.name);
        nodes[e.args.provider] = (nodes[e.args.provider] ?? 0) + 1;
        if (e.args.provider === 'CPUExecutionProvider') cpuOps[e.args.op_name ?? '?'] = (cpuOps[e.args.op_name ?? '?'] ?? 0) + 1;
      }
    }
    return { nodes, cpuOps };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RouteRun {
  msPerLayer: number;
  firstMs: number;
  /** y, dx and the gradients of the last run, on the host. */
  values: Record<string, Float32Array>;
}

/** Forward + backward `iters` times on the CPU EP: the native backend's graphs, its thread count and arena. */
async function cpuRoute(spec: L.DecoderLayerSpec, inputs: { floats: Feeds; masks: Feeds }, iters: number): Promise<RouteRun> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
  };
  const fwd = await ort.InferenceSession.create(L.forwardGraph(spec, true), options);
  const bwd = await ort.InferenceSession.create(L.backwardGraph(spec, false, wanted(spec)), options);
  const all = { ...inputs.floats, ...inputs.masks };
  const once = async (): Promise<Feeds> => {
    const f = await fwd.run(pick(all, fwd.inputNames));
    const saved = Object.fromEntries(Object.entries(f).filter(([n]) => n.startsWith('saved.')));
    const b = await bwd.run({ ...pick(all, bwd.inputNames), ...saved });
    return { y: f.y!, ...b };
  };
  let t = performance.now();
  let last = await once();
  const firstMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < iters; i++) last = await once();
  const msPerLayer = (performance.now() - t) / iters;
  const values = Object.fromEntries(Object.entries(last).map(([n, v]) => [n, v.data as Float32Array]));
  await fwd.release();
  await bwd.release();
  return { msPerLayer, firstMs, values };
}

/** The same on the WebGPU EP with the standard-op graphs, every float value on the GPU, chained. */
async function webgpuRoute(spec: L.DecoderLayerSpec, inputs: { floats: Feeds; masks: Feeds }, iters: number): Promise<RouteRun> {
  const gpu: ort.InferenceSession.SessionOptions = { executionProviders: ['webgpu'], graphOptimizationLevel: 'all', preferredOutputLocation: 'gpu-buffer' };
  const upload = await ort.InferenceSession.create(identityGraph(ranksOf(inputs.floats)), gpu);
  const fwd = await ort.InferenceSession.create(L.forwardGraph(spec, true, { standardOps: true }), gpu);
  const bwd = await ort.InferenceSession.create(L.backwardGraph(spec, false, wanted(spec), { standardOps: true }), gpu);
  const uploaded = await upload.run(inputs.floats);
  const onGpu: Feeds = { ...inputs.masks };
  for (const name of Object.keys(inputs.floats)) onGpu[name] = uploaded[`out.${name}`]!;
  const once = async (): Promise<Feeds> => {
    const f = await fwd.run(pick(onGpu, fwd.inputNames));
    const saved = Object.fromEntries(Object.entries(f).filter(([n]) => n.startsWith('saved.')));
    const b = await bwd.run({ ...pick(onGpu, bwd.inputNames), ...saved });
    for (const t of Object.values(saved)) t.dispose();
    return { y: f.y!, ...b };
  };
  const dispose = (r: Feeds) => {
    for (const t of Object.values(r)) t.dispose();
  };
  // read-back: an Identity session whose outputs are on the host (getData() on a gpu-buffer tensor aborts)
  let download: ort.InferenceSession | undefined;
  const readBack = async (r: Feeds): Promise<Record<string, Float32Array>> => {
    download ??= await ort.InferenceSession.create(identityGraph(ranksOf(r)), { executionProviders: ['webgpu'], preferredOutputLocation: 'cpu' });
    const out = await download.run(r);
    return Object.fromEntries(Object.keys(r).map((n) => [n, out[`out.${n}`]!.data as Float32Array]));
  };
  let t = performance.now();
  let last = await once();
  await readBack({ dx: last.dx! });
  const firstMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < iters; i++) {
    dispose(last);
    last = await once();
  }
  await readBack({ dx: last.dx! }); // waits for the GPU's queue
  const msPerLayer = (performance.now() - t) / iters;
  await download?.release();
  download = undefined;
  const values = await readBack(last);
  dispose(last);
  dispose(uploaded);
  for (const s of [upload, fwd, bwd, download]) await s?.release();
  return { msPerLayer, firstMs, values };
}

/** max |a − b| / max |b| of each tensor; the worst. */
function worstRelative(a: Record<string, Float32Array>, b: Record<string, Float32Array>): { maxRelErr: number; worst: string } {
  let maxRelErr = 0;
  let worst = '';
  for (const [name, ref] of Object.entries(b)) {
    const got = a[name];
    if (!got || got.length !== ref.length) return { maxRelErr: Number.POSITIVE_INFINITY, worst: `${name} (missing or of another size)` };
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(got[i]! - ref[i]!));
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    const rel = Number.isFinite(diff) ? diff / (scale || 1) : Number.POSITIVE_INFINITY;
    if (!(rel <= maxRelErr)) {
      maxRelErr = rel;
      worst = name;
    }
  }
  return { maxRelErr, worst };
}

const fmt = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');

export async function ortgpu(arg: Args): Promise<void> {
  const iters = Number(arg('iters', '10'));
  const cpuIters = Number(arg('cpu-iters', '3'));
  const routes = new Set(arg('routes', 'webgpu,cpu').split(','));
  let ok = true;
  console.log(`onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}; ${availableParallelism()} CPU threads for the CPU EP`);
  for (const shape of arg('shape', 'smollm,tinyllama').split(',')) {
    const dims = SHAPES[shape];
    if (!dims) throw new Error(`--shape must be among ${Object.keys(SHAPES).join(', ')}`);
    const spec = layerSpec(dims);
    console.log(
      `${shape}: hidden ${dims.hidden}, inter ${dims.inter}, ${dims.heads} heads / ${dims.kvHeads} kv heads, LoRA r ${RANK} on 7 projections (dropout ${DROPOUT}), batch 1 × seq ${dims.seq}`,
    );
    // 1. placement (shape-independent: a short sequence)
    const small = hostInputs(spec, 8);
    const smallFeeds = { ...small.floats, ...small.masks };
    let standardOnGpu = true;
    for (const graph of ['fused', 'standard'] as const) {
      const opts = { standardOps: graph === 'standard' };
      for (const direction of ['forward', 'backward'] as const) {
        const bytes = direction === 'forward' ? L.forwardGraph(spec, true, opts) : L.backwardGraph(spec, true, wanted(spec), opts);
        try {
          const p = await placement(bytes, smallFeeds);
          const cpu = Object.values(p.cpuOps).reduce((x, y) => x + y, 0);
          if (graph === 'standard' && cpu > 0) standardOnGpu = false;
          console.log(
            `  placement, ${graph === 'fused' ? "native's graph (FusedMatMul)" : 'standard-op graph'}, ${direction}${direction === 'backward' ? ' (recomputing)' : ''}: ${fmt(p.nodes)}${cpu ? `; on the CPU: ${fmt(p.cpuOps)}` : ''}`,
          );
          result({ command: 'ortgpu-placement', shape, graph, direction, ...p });
        } catch (err) {
          ok = false;
          console.log(`  placement, ${graph}, ${direction}: FAILED: ${(err as Error).message.split('\n')[0]}`);
          result({ command: 'ortgpu-placement', shape, graph, direction, error: (err as Error).message.split('\n')[0] });
        }
      }
    }
    // 2.–4. timing and parity at the real sequence length
    const inputs = hostInputs(spec, dims.seq);
    const runs: Record<string, RouteRun> = {};
    for (const route of ['webgpu', 'cpu']) {
      if (!routes.has(route)) continue;
      try {
        const r = route === 'webgpu' ? await webgpuRoute(spec, inputs, iters) : await cpuRoute(spec, inputs, cpuIters);
        runs[route] = r;
        const partial = route === 'webgpu' && !standardOnGpu;
        console.log(
          `  ${route.padEnd(6)} ${r.msPerLayer.toFixed(1).padStart(9)} ms per layer forward + backward (first run ${r.firstMs.toFixed(0)} ms)${partial ? ' — PARTIAL: some nodes ran on the CPU' : ''}`,
        );
        result({
          command: 'ortgpu',
          shape,
          route,
          graph: route === 'webgpu' ? 'standard' : 'fused',
          msPerLayer: r.msPerLayer,
          firstMs: r.firstMs,
          iters: route === 'webgpu' ? iters : cpuIters,
          allOnGpu: route === 'webgpu' ? standardOnGpu : undefined,
          seq: dims.seq,
        });
      } catch (err) {
        ok = false;
        console.log(`  ${route}: FAILED: ${(err as Error).message.split('\n')[0]}`);
        result({ command: 'ortgpu', shape, route, error: (err as Error).message.split('\n')[0] });
      }
    }
    if (runs.webgpu && runs.cpu) {
      const { maxRelErr, worst } = worstRelative(runs.webgpu.values, runs.cpu.values);
      const pass = maxRelErr < PARITY_TOLERANCE;
      ok &&= pass;
      console.log(
        `  ${pass ? 'PASS' : 'FAIL'} parity webgpu vs cpu (y, dx, 14 LoRA gradients): max relative error ${maxRelErr.toExponential(2)} (${worst}); webgpu speed vs cpu ${(runs.cpu.msPerLayer / runs.webgpu.msPerLayer).toFixed(2)}x`,
      );
      result({ command: 'ortgpu-parity', shape, pass, maxRelErr, worst, tensors: Object.keys(runs.cpu.values).length });
    }
  }
  if (!ok) process.exitCode = 1;
}
