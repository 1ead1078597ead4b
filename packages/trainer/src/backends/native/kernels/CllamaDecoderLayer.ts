/**
 * The native backend's fused decoder layer: DECODER_LAYER_KERNEL and DECODER_LAYER_GRAD_KERNEL
 * (contract in src/kernel-names.ts) as one onnxruntime graph each (../decoder-layer-graph.ts).
 * The reference is the model's op chain (src/model/llama.ts `decoderLayer`), which every other backend
 * runs; tests compare the two (test/fused-layer.test.ts).
 *
 *   forward:   the LoRA dropout masks are drawn here (../dropout-mask.ts: tf.dropout's masks
 *              for the given seeds), then one ORT run gives y and, when the caller keeps a tape and does
 *              not checkpoint, the values the backward reads;
 *   backward:  one ORT run from dy, the inputs, the masks and the saved values, or — gradient
 *              checkpointing — the same graph with the forward recomputed in front of it.
 *
 * Why: a layer written as tfjs ops is ~350 kernel calls forward and backward, each a JS loop or a
 * separate ORT call with tfjs's bookkeeping, and the tape keeps every op's inputs (rotary halves, GQA
 * tiles, dropout multipliers, scaled scores). One graph lets ORT's thread pool run the elementwise
 * work, its arena hold the intermediates, and the backward keep only what it needs.
 *
 * One ORT session per layer spec (sizes, LoRA set, dropout) and direction (forward with / without
 * saved values; backward with / without recomputation and per set of wanted gradients); batch and
 * sequence length stay symbolic, so every layer of a model shares them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backwardGraph, forwardGraph, gradOutputName, projectionShape, savedShapes, type DecoderLayerSpec, type Projection } from '../decoder-layer-graph.js';
import { dropoutKeepMasks } from '../dropout-mask.js';
import { DECODER_LAYER_GRAD_KERNEL, DECODER_LAYER_KERNEL, type DecoderLayerAttrs, type DecoderLayerGradAttrs } from '../../../kernel-names.js';
import { f32, type CpuBackend, type KernelArgs } from '../kernel-util.js';
import type { GraphTensor, OrtRuntime } from '../ort.js';

const FORWARD_INPUTS = [
  'x',
  'cos',
  'sin',
  'bias',
  'input_layernorm',
  'post_attention_layernorm',
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;

function specOf(attrs: Omit<DecoderLayerAttrs, 'save' | 'seeds'>): DecoderLayerSpec {
  return {
    hidden: attrs.hidden,
    intermediate: attrs.intermediate,
    heads: attrs.heads,
    kvHeads: attrs.kvHeads,
    eps: attrs.eps,
    dropoutRate: attrs.dropoutRate,
    lora: attrs.lora.map((l) => ({ module: l.module as Projection, rank: l.rank, scaling: l.scaling, dropout: attrs.dropoutRate > 0 })),
  };
}

/**
 * The mask bias laid out as the scores are, [B|1, kvHeads, groups · T, T] (the [T, T] mask repeated
 * over every query head): made once per bias tensor, so each layer's score + bias is a plain add
 * (onnxruntime's add broadcasting over the heads ran ~1.5× slower).
 */
const groupedBiases = new WeakMap<object, { heads: number; kvHeads: number; data: Float32Array }>();

function groupedBias(bias: GraphTensor, dataId: object, heads: number, kvHeads: number): GraphTensor {
  const [bb, , t, k] = bias.dims as [number, number, number, number];
  let cached = groupedBiases.get(dataId);
  if (cached?.heads !== heads || cached.kvHeads !== kvHeads) {
    const data = new Float32Array(bb * heads * t * k);
    for (let b = 0; b < bb; b++) {
      const rows = bias.data.subarray(b * t * k, (b + 1) * t * k);
      for (let h = 0; h < heads; h++) data.set(rows, (b * heads + h) * t * k);
    }
    cached = { heads, kvHeads, data };
    groupedBiases.set(dataId, cached);
  }
  return { data: cached.data, dims: [bb, kvHeads, (heads / kvHeads) * t, k] };
}

/** The float32 inputs every layer graph reads, in place (the bias grouped). */
function layerFeeds(backend: CpuBackend, inputs: Record<string, tf.TensorInfo>, spec: DecoderLayerSpec, kernel: string): Record<string, GraphTensor> {
  const feeds: Record<string, GraphTensor> = {};
  const take = (name: string) => {
    const t = inputs[name];
    const data = t && f32(backend, t);
    if (!t || !data) throw new Error(`${kernel}: input '${name}' must be a float32 tensor`);
    feeds[name] = { data, dims: t.shape };
  };
  for (const name of FORWARD_INPUTS) take(name);
  const bias = inputs.bias!;
  if (bias.shape.length !== 4 || bias.shape[1] !== 1) throw new Error(`${kernel}: bias must be [batch|1, 1, seq, seq], got [${bias.shape}]`);
  feeds.bias = groupedBias(feeds.bias!, bias.dataId, spec.heads, spec.kvHeads);
  for (const l of spec.lora) {
    take(`${l.module}.lora_A`);
    take(`${l.module}.lora_B`);
  }
  return feeds;
}

/** [batch, seq] of x, after checking x against the spec. */
function batchSeq(x: tf.TensorInfo, spec: DecoderLayerSpec, kernel: string): [number, number] {
  if (x.shape.length !== 3 || x.shape[2] !== spec.hidden) throw new Error(`${kernel}: x must be [batch, seq, ${spec.hidden}], got [${x.shape}]`);
  return [x.shape[0]!, x.shape[1]!];
}

/** Registers the two kernels on `backendName`, running on `ort`. */
export function registerDecoderLayerKernels(ort: OrtRuntime, backendName: string): void {
  const forward = (args: KernelArgs): tf.TensorInfo[] => {
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as DecoderLayerAttrs;
    const spec = specOf(attrs);
    const [batch, seq] = batchSeq(inputs.x!, spec, DECODER_LAYER_KERNEL);
    const feeds = layerFeeds(backend, inputs, spec, DECODER_LAYER_KERNEL);
    const masks: tf.TensorInfo[] = [];
    if (spec.dropoutRate > 0) {
      if (attrs.seeds.length !== spec.lora.length) throw new Error(`${DECODER_LAYER_KERNEL}: one dropout seed per LoRA projection is needed`);
      const shapes = spec.lora.map((l) => [batch, seq, projectionShape(spec, l.module)[1]]);
      const drawn = dropoutKeepMasks(
        attrs.seeds,
        spec.dropoutRate,
        shapes.map((s) => batch * seq * s[2]!),
      );
      spec.lora.forEach((l, i) => {
        feeds[`${l.module}.mask`] = { data: drawn[i]!, dims: shapes[i]! };
        masks.push(backend.makeTensorInfo(shapes[i]!, 'bool', drawn[i]!));
      });
    }
    const saved = attrs.save ? savedShapes(spec, batch, seq) : {};
    const outShapes: Record<string, number[]> = { y: [batch, seq, spec.hidden] };
    for (const [name, shape] of Object.entries(saved)) outShapes[`saved.${name}`] = shape;
    const key = `${DECODER_LAYER_KERNEL}:${JSON.stringify(spec)}:${attrs.save}`;
    const out = ort.graph(key, () => forwardGraph(spec, attrs.save), feeds, outShapes);
    return [
      backend.makeTensorInfo(outShapes.y!, 'float32', out.y),
      ...masks,
      ...Object.entries(saved).map(([name, shape]) => backend.makeTensorInfo(shape, 'float32', out[`saved.${name}`])),
    ];
  };

  const backward = (args: KernelArgs): tf.TensorInfo[] => {
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as DecoderLayerGradAttrs;
    const spec = specOf(attrs);
    const [batch, seq] = batchSeq(inputs.x!, spec, DECODER_LAYER_GRAD_KERNEL);
    const feeds = layerFeeds(backend, inputs, spec, DECODER_LAYER_GRAD_KERNEL);
    const dy = inputs.dy && f32(backend, inputs.dy);
    if (!dy) throw new Error(`${DECODER_LAYER_GRAD_KERNEL}: dy must be a float32 tensor`);
    feeds.dy = { data: dy, dims: inputs.dy!.shape };
    if (spec.dropoutRate > 0) {
      for (const l of spec.lora) {
        const m = inputs[`${l.module}.mask`];
        const data = m && backend.data.get(m.dataId).values;
        if (!m || !(data instanceof Uint8Array)) throw new Error(`${DECODER_LAYER_GRAD_KERNEL}: '${l.module}.mask' must be a bool tensor`);
        feeds[`${l.module}.mask`] = { data, dims: m.shape };
      }
    }
    if (!attrs.recompute) {
      Object.keys(savedShapes(spec, batch, seq)).forEach((name, i) => {
        const t = inputs[`saved.${i}`];
        const data = t && f32(backend, t);
        if (!t || !data) throw new Error(`${DECODER_LAYER_GRAD_KERNEL}: 'saved.${i}' (${name}) is missing`);
        feeds[`saved.${name}`] = { data, dims: t.shape };
      });
    }
    const outShapes: Record<string, number[]> = { dx: [batch, seq, spec.hidden] };
    for (const name of attrs.wanted) if (name !== 'x') outShapes[gradOutputName(name)] = [...inputs[name]!.shape];
    const key = `${DECODER_LAYER_GRAD_KERNEL}:${JSON.stringify(spec)}:${attrs.recompute}:${attrs.wanted.join(',')}`;
    const out = ort.graph(key, () => backwardGraph(spec, attrs.recompute, attrs.wanted), feeds, outShapes);
    return attrs.wanted.map((name) => {
      const o = gradOutputName(name);
      return backend.makeTensorInfo(outShapes[o]!, 'float32', out[o]);
    });
  };

  for (const [kernelName, kernelFunc] of [
    [DECODER_LAYER_KERNEL, forward],
    [DECODER_LAYER_GRAD_KERNEL, backward],
  ] as const) {
    tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}
