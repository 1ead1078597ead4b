/**
 * The decoder-layer graphs' `standardOps` variant (src/backends/native/decoder-layer-graph.ts; public as
 * `decoderLayerOnnx`, run on onnxruntime's WebGPU EP by bench/gpu-kit's ortgpu part): no com.microsoft
 * FusedMatMul left, and the same forward outputs, saved values and gradients as the native backend's
 * graphs on onnxruntime's CPU EP (grouped-query attention, LoRA with dropout masks, saved and recomputed
 * backward). Skipped, saying so, where onnxruntime-node is not installed.
 */
import { describe, expect, it } from 'vitest';
import { backwardGraph, forwardGraph, PROJECTIONS, projectionShape, savedShapes, type DecoderLayerSpec } from '../src/backends/native/decoder-layer-graph.js';
import { loadOrt, type GraphTensor } from '../src/backends/native/ort.js';
import { decoderLayerOnnx } from '../src/index.js';

const ort = await loadOrt({ env: {}, threads: 1 });
if (!ort.ok) console.warn(`layer-graph-standard-ops: skipped, ${ort.reason}`);

const spec: DecoderLayerSpec = {
  hidden: 24,
  intermediate: 40,
  heads: 6,
  kvHeads: 2,
  eps: 1e-5,
  dropoutRate: 0.1,
  // LoRA on some projections only: the others keep their plain MatMul path
  lora: (['q_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'] as const).map((module) => ({ module, rank: 4, scaling: 2, dropout: true })),
};
const [batch, seq] = [2, 5];
const d = spec.hidden / spec.heads;
const wanted = ['x', 'q_proj.lora_A', 'v_proj.lora_B', 'down_proj.lora_A', 'down_proj.lora_B', 'up_proj', 'input_layernorm'];

function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
  });
}

function inputs(): Record<string, GraphTensor> {
  let seed = 7;
  const t = (dims: number[], scale = 1): GraphTensor => ({
    data: values(
      dims.reduce((a, b) => a * b, 1),
      seed++,
      scale,
    ),
    dims,
  });
  const feeds: Record<string, GraphTensor> = {
    x: t([batch, seq, spec.hidden]),
    dy: t([batch, seq, spec.hidden]),
    cos: t([seq, d]),
    sin: t([seq, d]),
    bias: t([batch, spec.kvHeads, (spec.heads / spec.kvHeads) * seq, seq], 2),
    input_layernorm: t([spec.hidden]),
    post_attention_layernorm: t([spec.hidden]),
  };
  for (const p of PROJECTIONS) feeds[p] = t(projectionShape(spec, p), 0.3);
  for (const l of spec.lora) {
    const [out, inF] = projectionShape(spec, l.module);
    feeds[`${l.module}.lora_A`] = t([l.rank, inF], 0.3);
    feeds[`${l.module}.lora_B`] = t([out, l.rank], 0.3);
    feeds[`${l.module}.mask`] = { data: Uint8Array.from(values(batch * seq * inF, seed++), (u) => (u > -0.8 ? 1 : 0)), dims: [batch, seq, inF] };
  }
  return feeds;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

function expectClose(got: Record<string, Float32Array>, want: Record<string, Float32Array>): void {
  for (const [name, ref] of Object.entries(want)) {
    const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const diff = ref.reduce((m, v, i) => Math.max(m, Math.abs(v - got[name]![i]!)), 0);
    expect(scale, name).toBeGreaterThan(0);
    expect(diff / scale, name).toBeLessThan(1e-5);
  }
}

describe.skipIf(!ort.ok)('decoder-layer graphs with standardOps (no FusedMatMul)', () => {
  const runtime = ort.ok ? ort.runtime : undefined!;
  const feeds = inputs();
  const saved = savedShapes(spec, batch, seq);
  const forwardOuts = { y: [batch, seq, spec.hidden], ...Object.fromEntries(Object.entries(saved).map(([n, s]) => [`saved.${n}`, s])) };
  const gradOuts = Object.fromEntries(wanted.map((n) => [n === 'x' ? 'dx' : `d.${n}`, n === 'x' ? feeds.x!.dims : feeds[n]!.dims] as const)) as Record<
    string,
    readonly number[]
  >;

  it('are built from standard ONNX ops only; the default graphs keep FusedMatMul', () => {
    expect(text(forwardGraph(spec, true))).toContain('FusedMatMul');
    expect(text(backwardGraph(spec, false, wanted))).toContain('FusedMatMul');
    expect(text(forwardGraph(spec, true, { standardOps: true }))).not.toContain('FusedMatMul');
    expect(text(backwardGraph(spec, false, wanted, { standardOps: true }))).not.toContain('FusedMatMul');
    expect(text(backwardGraph(spec, true, wanted, { standardOps: true }))).not.toContain('FusedMatMul');
    // the public re-export is the same builder
    expect(decoderLayerOnnx.forwardGraph).toBe(forwardGraph);
  });

  it('give the forward outputs and saved values of the native graph', () => {
    const fused = runtime.graph('f', () => forwardGraph(spec, true), feeds, forwardOuts);
    const standard = runtime.graph('fs', () => forwardGraph(spec, true, { standardOps: true }), feeds, forwardOuts);
    expectClose(standard, fused);
  });

  it('give the gradients of the native graph, from saved values and recomputing', () => {
    const fwd = runtime.graph('f', () => forwardGraph(spec, true), feeds, forwardOuts);
    const withSaved = { ...feeds };
    for (const n of Object.keys(saved)) withSaved[`saved.${n}`] = { data: fwd[`saved.${n}`]!, dims: saved[n]! };
    const fused = runtime.graph('b', () => backwardGraph(spec, false, wanted), withSaved, gradOuts);
    expectClose(
      runtime.graph('bs', () => backwardGraph(spec, false, wanted, { standardOps: true }), withSaved, gradOuts),
      fused,
    );
    expectClose(
      runtime.graph('brs', () => backwardGraph(spec, true, wanted, { standardOps: true }), feeds, gradOuts),
      fused,
    );
  });
});
