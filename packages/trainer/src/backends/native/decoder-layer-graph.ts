/**
 * A LLaMA decoder layer's forward and backward as ONNX graphs, for the native backend's fused layer
 * kernel (kernels/CllamaDecoderLayer.ts). The mathematics is the model's op chain (src/model/llama.ts
 * `decoderLayer`, with ops.ts's rmsNorm, applyRotary, attention and silu, and LoRA's
 * y = x Wᵀ + s · (dropout(x) Aᵀ) Bᵀ):
 *
 *   n1 = ln1 ⊙ x · r1,  r1 = 1/√(mean(x²) + ε)
 *   q, k, v = proj(n1) → heads [B, heads, T, D]; rotary on q, k (x cos + rotate_half(x) sin)
 *   P = softmax(q kᵀ · scale + bias);  ctx = P v;  h = x + proj_o(ctx merged)
 *   n2 = ln2 ⊙ h · r2;  y = h + proj_down(silu(proj_gate(n2)) ⊙ proj_up(n2))
 *
 * and the backward is written out by hand (there is no autodiff in onnxruntime's inference build):
 *   projection:  dX = dY W (+ s·(dY B) A ⊙ mask/keep);  dW = dYᵀ X;  dB = s·dYᵀ t;  dA = (s·dY B)ᵀ X̃
 *                (t = X̃ Aᵀ, X̃ = X ⊙ mask/keep)
 *   SwiGLU:      du = da ⊙ silu(g);  dg = da ⊙ u ⊙ σ(g)(1 + g(1 − σ(g)))
 *   RMSNorm:     dx = r (dn ⊙ w − x̂ · mean(dn ⊙ w ⊙ x̂)),  dw = Σ dn ⊙ x̂   (x̂ = x · r)
 *   attention:   dP = dctx vᵀ;  dS = P ⊙ (dP − rowsum(dctx ⊙ ctx));  dq = scale · dS k;  dk = scale · dSᵀ q;
 *                dv = Pᵀ dctx   (rowsum(dP ⊙ P) = dctx · ctx, the flash-attention identity)
 *   rotary:      dx = dy cos − rotate_half(dy sin)
 *
 * How this differs from the op chain:
 *   - grouped-query attention without copies: the query heads that share a key/value head are laid out
 *     as one [groups · T, D] block ([B, kvHeads, groups · T, D] is a free reshape of [B, heads, T, D]),
 *     so q kᵀ, P v and the backward's products are one GEMM per key/value head, and the backward's sum
 *     over the group falls out of its GEMMs; only the [T, T] mask comes repeated over the heads
 *     (`bias` is [B|1, kvHeads, groups · T, T], made once per mask by the kernel);
 *   - the dropout mask arrives as bool (true = keep): the dropped input is x · float(mask) (one Cast
 *     per mask, shared by the forward and the backward; Where ran slower), and the 1/keep factor, the
 *     score scale and the LoRA scaling are GEMM alphas (FusedMatMul / Gemm), so rounding differs from
 *     the chain's separate multiplications by float32 ulps;
 *   - the backward recomputes what is cheap (the norms' outputs, silu, the dropped inputs) from what
 *     the forward saved (savedShapes) — or, under gradient checkpointing, the whole forward from x.
 */
import { OnnxGraph } from './onnx-graph.js';

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];
export const NORMS = ['input_layernorm', 'post_attention_layernorm'] as const;

export interface LayerLoraSpec {
  module: Projection;
  rank: number;
  scaling: number;
  /** True when a dropout mask is applied to the branch's input (training with lora_dropout > 0). */
  dropout: boolean;
}

/** What a layer graph is built for; one session per distinct spec (batch and sequence stay symbolic). */
export interface DecoderLayerSpec {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  eps: number;
  lora: LayerLoraSpec[];
  /** LoRA dropout rate (the masks' 1/keep scale); 0 without dropout. */
  dropoutRate: number;
}

/** The forward's values the backward reads (when not recomputing), with their shapes for [B, T]. */
export function savedShapes(spec: DecoderLayerSpec, batch: number, seq: number): Record<string, number[]> {
  const { hidden: h, intermediate: i, heads, kvHeads } = spec;
  const d = h / heads;
  const out: Record<string, number[]> = {
    r1: [batch, seq, 1],
    qr: [batch, heads, seq, d],
    kr: [batch, kvHeads, seq, d],
    v: [batch, kvHeads, seq, d],
    probs: [batch, kvHeads, (heads / kvHeads) * seq, seq],
    merged: [batch, seq, h],
    h: [batch, seq, h],
    r2: [batch, seq, 1],
    g: [batch, seq, i],
    u: [batch, seq, i],
  };
  for (const l of spec.lora) out[`${l.module}.t`] = [batch, seq, l.rank];
  return out;
}

/** [out, in] of a projection. */
export function projectionShape(spec: DecoderLayerSpec, module: Projection): [number, number] {
  const { hidden: h, intermediate: i } = spec;
  const kv = (h / spec.heads) * spec.kvHeads;
  return ({ q_proj: [h, h], k_proj: [kv, h], v_proj: [kv, h], o_proj: [h, h], gate_proj: [i, h], up_proj: [i, h], down_proj: [h, i] } as const)[module] as [
    number,
    number,
  ];
}

const MS = 'com.microsoft';

export interface LayerGraphOptions {
  /**
   * Only standard ONNX ops: each FusedMatMul (com.microsoft; transposes and scale read in place) becomes
   * Transpose + MatMul + Mul, for execution providers without that contrib op (onnxruntime's WebGPU EP
   * runs FusedMatMul on the CPU). The native backend keeps the default (FusedMatMul).
   */
  standardOps?: boolean;
}

/** Builds the nodes shared by the forward and backward graphs. */
class LayerBuilder {
  readonly g = new OnnxGraph();
  readonly d: number;
  readonly groups: number;
  readonly lora: Map<Projection, LayerLoraSpec>;
  private readonly keepScale: number;
  private readonly droppedCache = new Map<string, string>();
  /** The 2-D graph inputs (weights, LoRA matrices). */
  private readonly matrices = new Set<string>();

  constructor(
    readonly spec: DecoderLayerSpec,
    private readonly opts: LayerGraphOptions = {},
  ) {
    this.d = spec.hidden / spec.heads;
    this.groups = spec.heads / spec.kvHeads;
    this.lora = new Map(spec.lora.map((l) => [l.module, l]));
    // tf.dropout's multiplier: floor(u + keep) / keep, keep = float32(1 − rate)
    this.keepScale = spec.dropoutRate > 0 ? Math.fround(1 / Math.fround(1 - spec.dropoutRate)) : 1;
  }

  /** Declares the inputs every graph reads: x, the rotary tables, the mask, weights, LoRA pairs and masks. */
  declareInputs(): void {
    const g = this.g;
    g.input('x', 3);
    g.input('cos', 2);
    g.input('sin', 2);
    g.input('bias', 4);
    for (const n of NORMS) g.input(n, 1);
    for (const p of PROJECTIONS) this.matrices.add(g.input(p, 2));
    for (const l of this.spec.lora) {
      this.matrices.add(g.input(`${l.module}.lora_A`, 2));
      this.matrices.add(g.input(`${l.module}.lora_B`, 2));
      if (l.dropout) g.input(`${l.module}.mask`, 3, 'bool');
    }
  }

  matMul(a: string, b: string, opts: { transA?: boolean; transB?: boolean; alpha?: number } = {}): string {
    if (!opts.transA && !opts.transB && opts.alpha === undefined) return this.g.op('MatMul', [a, b]);
    if (this.opts.standardOps) {
      // transA only ever meets a [B, kvHeads, rows, D] value; transB a 2-D weight / LoRA matrix (a graph
      // input) or a [B, kvHeads, T, D] one
      const g = this.g;
      const at = opts.transA ? g.op('Transpose', [a], { perm: [0, 1, 3, 2] }) : a;
      const bt = opts.transB ? g.op('Transpose', [b], { perm: this.matrices.has(b) ? [1, 0] : [0, 1, 3, 2] }) : b;
      const y = g.op('MatMul', [at, bt]);
      return opts.alpha === undefined || opts.alpha === 1 ? y : g.op('Mul', [y, g.scalar(opts.alpha)]);
    }
    return this.g.op('FusedMatMul', [a, b], { transA: opts.transA ? 1 : 0, transB: opts.transB ? 1 : 0, alpha: { f: opts.alpha ?? 1 } }, MS);
  }

  /** X with the dropped elements zeroed (the 1/keep factor is left to the GEMM that reads it), else X. */
  dropped(module: Projection, x: string): string {
    const l = this.lora.get(module);
    if (!l?.dropout) return x;
    const key = `${module}:${x}`;
    let d = this.droppedCache.get(key);
    if (!d) {
      d = this.g.op('Mul', [x, this.maskValue(module)]);
      this.droppedCache.set(key, d);
    }
    return d;
  }

  /** A projection's mask as 0/1 floats (one Cast per graph). */
  private maskValue(module: Projection): string {
    const key = `${module}:mask`;
    let m = this.droppedCache.get(key);
    if (!m) {
      m = this.g.op('Cast', [`${module}.mask`], { to: 1 });
      this.droppedCache.set(key, m);
    }
    return m;
  }

  /** The factor `dropped` leaves out: 1/keep with dropout, else 1. */
  dropScale(module: Projection): number {
    return this.lora.get(module)?.dropout ? this.keepScale : 1;
  }

  /** x Wᵀ (+ s · (dropout(x) Aᵀ) Bᵀ); also returns t = dropout(x) Aᵀ for the backward. */
  linear(module: Projection, x: string): { y: string; t?: string } {
    const base = this.matMul(x, module, { transB: true });
    const l = this.lora.get(module);
    if (!l) return { y: base };
    const t = this.matMul(this.dropped(module, x), `${module}.lora_A`, { transB: true, alpha: this.dropScale(module) });
    const branch = this.matMul(t, `${module}.lora_B`, { transB: true, alpha: l.scaling });
    return { y: this.g.op('Add', [base, branch]), t };
  }

  /** 1/√(mean(x²) + ε) over the last axis, [B, T, 1]. */
  rmsFactor(x: string): string {
    const g = this.g;
    const variance = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    return g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(this.spec.eps)])])]);
  }

  /** w ⊙ (x · r). */
  normed(x: string, r: string, w: string): string {
    return this.g.op('Mul', [w, this.g.op('Mul', [x, r])]);
  }

  /** [B, T, n·D] → [B, n, T, D]. */
  splitHeads(x: string, n: number): string {
    return this.g.op('Transpose', [this.g.op('Reshape', [x, this.g.ints([0, 0, n, this.d])])], { perm: [0, 2, 1, 3] });
  }

  /** [B, n, T, D] → [B, T, n·D]. */
  mergeHeads(x: string, n: number): string {
    return this.g.op('Reshape', [this.g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), this.g.ints([0, 0, n * this.d])]);
  }

  /** HF's rotate_half: concat(−x[…, D/2:], x[…, :D/2]). */
  rotateHalf(x: string): string {
    const [x1, x2] = this.g.opN('Split', [x, this.g.ints([this.d / 2, this.d / 2])], 2, { axis: -1 });
    return this.g.op('Concat', [this.g.op('Neg', [x2!]), x1!], { axis: -1 });
  }

  rotary(x: string): string {
    return this.g.op('Add', [this.g.op('Mul', [x, 'cos']), this.g.op('Mul', [this.rotateHalf(x), 'sin'])]);
  }

  /** [B, heads, T, D] → [B, kvHeads, groups·T, D] (a free reshape: a group's query heads are adjacent). */
  grouped(x: string): string {
    return this.g.op('Reshape', [x, this.g.ints([0, this.spec.kvHeads, -1, this.d])]);
  }

  ungrouped(x: string): string {
    return this.g.op('Reshape', [x, this.g.ints([0, this.spec.heads, -1, this.d])]);
  }

  /** The forward's values; `saved` names come from graph inputs when the backward does not recompute. */
  forward(): Record<string, string> {
    const g = this.g;
    const scale = 1 / Math.sqrt(this.d);
    const v: Record<string, string> = {};
    v.r1 = this.rmsFactor('x');
    const n1 = this.normed('x', v.r1, 'input_layernorm');
    const q = this.linear('q_proj', n1);
    const k = this.linear('k_proj', n1);
    const val = this.linear('v_proj', n1);
    v.qr = this.rotary(this.splitHeads(q.y, this.spec.heads));
    v.kr = this.rotary(this.splitHeads(k.y, this.spec.kvHeads));
    v.v = this.splitHeads(val.y, this.spec.kvHeads);
    const scores = g.op('Add', [this.matMul(this.grouped(v.qr), v.kr, { transB: true, alpha: scale }), 'bias']);
    v.probs = g.op('Softmax', [scores], { axis: -1 });
    v.merged = this.mergeHeads(this.ungrouped(g.op('MatMul', [v.probs, v.v])), this.spec.heads);
    const o = this.linear('o_proj', v.merged);
    v.h = g.op('Add', ['x', o.y]);
    v.r2 = this.rmsFactor(v.h);
    const n2 = this.normed(v.h, v.r2, 'post_attention_layernorm');
    const gate = this.linear('gate_proj', n2);
    const up = this.linear('up_proj', n2);
    v.g = gate.y;
    v.u = up.y;
    const act = g.op('Mul', [g.op('Mul', [v.g, g.op('Sigmoid', [v.g])]), v.u]);
    const down = this.linear('down_proj', act);
    v.y = g.op('Add', [v.h, down.y]);
    for (const [m, r] of [
      ['q_proj', q],
      ['k_proj', k],
      ['v_proj', val],
      ['o_proj', o],
      ['gate_proj', gate],
      ['up_proj', up],
      ['down_proj', down],
    ] as const) {
      if (r.t) v[`${m}.t`] = r.t;
    }
    return v;
  }

  /**
   * The backward of one projection y = linear(x): adds the wanted weight / LoRA gradients to `grads`
   * and returns dX.
   */
  linearBackward(module: Projection, x: string, t: string | undefined, dy: string, want: Set<string>, grads: Record<string, string>): string {
    const g = this.g;
    const [out, inFeatures] = projectionShape(this.spec, module);
    const rows = (v: string, width: number) => g.op('Reshape', [v, g.ints([-1, width])]);
    let dx = g.op('MatMul', [dy, module]);
    if (want.has(module)) grads[module] = g.op('Gemm', [rows(dy, out), rows(x, inFeatures)], { transA: 1 });
    const l = this.lora.get(module);
    if (!l || !t) return dx;
    const r = l.rank;
    if (want.has(`${module}.lora_B`)) grads[`${module}.lora_B`] = g.op('Gemm', [rows(dy, out), rows(t, r)], { transA: 1, alpha: { f: l.scaling } });
    const dt = this.matMul(dy, `${module}.lora_B`, { alpha: l.scaling });
    const keep = this.dropScale(module);
    if (want.has(`${module}.lora_A`)) {
      grads[`${module}.lora_A`] = g.op('Gemm', [rows(dt, r), rows(this.dropped(module, x), inFeatures)], { transA: 1, alpha: { f: keep } });
    }
    const dxBranch = this.dropped(module, this.matMul(dt, `${module}.lora_A`, { alpha: keep }));
    dx = g.op('Add', [dx, dxBranch]);
    return dx;
  }

  /** RMSNorm's backward: dx for n = w ⊙ x · r, and dw when wanted. */
  rmsBackward(norm: (typeof NORMS)[number], x: string, r: string, dn: string, want: Set<string>, grads: Record<string, string>): string {
    const g = this.g;
    const xhat = g.op('Mul', [x, r]);
    if (want.has(norm)) grads[norm] = g.op('ReduceSum', [g.op('Mul', [dn, xhat]), g.ints([0, 1])], { keepdims: 0 });
    const dxhat = g.op('Mul', [dn, norm]);
    const m = g.op('ReduceMean', [g.op('Mul', [dxhat, xhat])], { axes: [-1], keepdims: 1 });
    return g.op('Mul', [r, g.op('Sub', [dxhat, g.op('Mul', [xhat, m])])]);
  }

  /** The backward from dy, given the forward's values `v`; returns dx and the wanted gradients. */
  backward(v: Record<string, string>, want: Set<string>): { dx: string; grads: Record<string, string> } {
    const g = this.g;
    const { heads, kvHeads } = this.spec;
    const scale = 1 / Math.sqrt(this.d);
    const grads: Record<string, string> = {};
    // MLP
    const sg = g.op('Sigmoid', [v.g!]);
    const silu = g.op('Mul', [v.g!, sg]);
    const act = g.op('Mul', [silu, v.u!]);
    const n2 = this.normed(v.h!, v.r2!, 'post_attention_layernorm');
    const dact = this.linearBackward('down_proj', act, v['down_proj.t'], 'dy', want, grads);
    const du = g.op('Mul', [dact, silu]);
    const dsilu = g.op('Mul', [dact, v.u!]);
    // d silu / dg = σ(g) (1 + g (1 − σ(g))) = σ(g) + silu(g) (1 − σ(g))
    const dsdg = g.op('Add', [sg, g.op('Mul', [silu, g.op('Sub', [g.scalar(1), sg])])]);
    const dg = g.op('Mul', [dsilu, dsdg]);
    const dn2 = g.op('Add', [
      this.linearBackward('gate_proj', n2, v['gate_proj.t'], dg, want, grads),
      this.linearBackward('up_proj', n2, v['up_proj.t'], du, want, grads),
    ]);
    const dh = g.op('Add', ['dy', this.rmsBackward('post_attention_layernorm', v.h!, v.r2!, dn2, want, grads)]);
    // attention
    const dmerged = this.linearBackward('o_proj', v.merged!, v['o_proj.t'], dh, want, grads);
    const dctx = this.grouped(this.splitHeads(dmerged, heads));
    // rowsum(dP ⊙ P) = dctx · ctx per query row, computed in the [B, T, heads, D] layout
    const perHead = (x: string) => g.op('Reshape', [x, g.ints([0, 0, heads, this.d])]);
    const rowDot = g.op('ReduceSum', [g.op('Mul', [perHead(dmerged), perHead(v.merged!)]), g.ints([-1])], { keepdims: 1 });
    const delta = g.op('Reshape', [g.op('Transpose', [rowDot], { perm: [0, 2, 1, 3] }), g.ints([0, kvHeads, -1, 1])]);
    const dp = this.matMul(dctx, v.v!, { transB: true });
    const ds = g.op('Mul', [v.probs!, g.op('Sub', [dp, delta])]);
    const qGrouped = this.grouped(v.qr!);
    const dqr = this.ungrouped(this.matMul(ds, v.kr!, { alpha: scale }));
    const dkr = this.matMul(ds, qGrouped, { transA: true, alpha: scale });
    const dv = this.matMul(v.probs!, dctx, { transA: true });
    const unrotate = (x: string) => g.op('Sub', [g.op('Mul', [x, 'cos']), this.rotateHalf(g.op('Mul', [x, 'sin']))]);
    const n1 = this.normed('x', v.r1!, 'input_layernorm');
    const dn1 = g.op('Add', [
      g.op('Add', [
        this.linearBackward('q_proj', n1, v['q_proj.t'], this.mergeHeads(unrotate(dqr), heads), want, grads),
        this.linearBackward('k_proj', n1, v['k_proj.t'], this.mergeHeads(unrotate(dkr), kvHeads), want, grads),
      ]),
      this.linearBackward('v_proj', n1, v['v_proj.t'], this.mergeHeads(dv, kvHeads), want, grads),
    ]);
    const dx = g.op('Add', [dh, this.rmsBackward('input_layernorm', 'x', v.r1!, dn1, want, grads)]);
    return { dx, grads };
  }
}

const rankOf = (shapes: Record<string, number[]>, name: string) => shapes[name]!.length;

/** The forward graph: output y, plus the saved values when `save`. */
export function forwardGraph(spec: DecoderLayerSpec, save: boolean, opts: LayerGraphOptions = {}): Uint8Array {
  const b = new LayerBuilder(spec, opts);
  b.declareInputs();
  const v = b.forward();
  b.g.output('y', v.y!, 3);
  if (save) {
    const shapes = savedShapes(spec, 1, 1);
    for (const name of Object.keys(shapes)) b.g.output(`saved.${name}`, v[name]!, rankOf(shapes, name));
  }
  return b.g.bytes();
}

/** Gradient output names: `dx` and `d.<input>` for each wanted input (weights, norms, LoRA A/B). */
export function gradOutputName(input: string): string {
  return input === 'x' ? 'dx' : `d.${input}`;
}

/**
 * The backward graph: inputs dy + the forward's inputs + (unless `recompute`) the saved values;
 * outputs dx and the gradients of `wanted` (weights by projection / norm name, `<proj>.lora_A|B`).
 */
export function backwardGraph(spec: DecoderLayerSpec, recompute: boolean, wanted: readonly string[], opts: LayerGraphOptions = {}): Uint8Array {
  const b = new LayerBuilder(spec, opts);
  b.declareInputs();
  b.g.input('dy', 3);
  let v: Record<string, string>;
  if (recompute) {
    v = b.forward();
  } else {
    const shapes = savedShapes(spec, 1, 1);
    v = {};
    for (const name of Object.keys(shapes)) v[name] = b.g.input(`saved.${name}`, rankOf(shapes, name));
  }
  const want = new Set(wanted);
  const { dx, grads } = b.backward(v, want);
  b.g.output('dx', dx, 3);
  for (const name of wanted) {
    if (name === 'x') continue;
    const grad = grads[name];
    if (!grad) throw new Error(`decoder layer graph: no gradient for '${name}'`);
    b.g.output(gradOutputName(name), grad, name.includes('lora_') || PROJECTIONS.includes(name as Projection) ? 2 : 1);
  }
  return b.g.bytes();
}
