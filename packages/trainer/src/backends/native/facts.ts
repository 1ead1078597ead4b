/**
 * The facts of the `native` backend (tfjs-cpu tensors, onnxruntime-node kernels: backend.ts) — see
 * ../facts.ts.
 *
 *   transposeFlagsFree   onnxruntime's Gemm reads either layout: x @ Wᵀ needs no transposed copy of W
 *   headChunk            onnxruntime packs the [vocab, hidden] head for every GEMM call, so 4× taller
 *                        chunks (up to 1024 tokens within 256 MiB of logits) ran the head's three
 *                        products 1.5× faster (bench config)
 *   threads              onnxruntime's thread pool already uses every core
 *   activationFactor     tensors are JS arrays: where the op chain runs (generation with a KV cache,
 *                        `fusedLayers = false`), a SmolLM-135M-shape LoRA step at seq 512 peaked at
 *                        10.1 GB RSS against 1.2 GB of weights + 1.7 GB of estimated activations
 *   fusedLayerSavedFloats  training runs each layer as one onnxruntime graph (kernels/CllamaDecoderLayer.ts)
 *                        that keeps decoder-layer-graph.ts's savedShapes for its backward
 *   runtimeBytes         node + tfjs + onnxruntime loaded (~0.35 GB) and the recycling pool's freed
 *                        arrays (pool.ts): what fourteen measured peaks (bench/lora-step.ts and two
 *                        default-flag sft runs, docs/trainer.md) show beyond the estimate's tensors
 */
import { JS_BACKEND_ACTIVATION_FACTOR } from '../cpu/facts.js';
import { GENERIC_FACTS, HEAD_CHUNK_TOKENS, type BackendFacts, type LayerDims } from '../facts.js';
import { PROJECTIONS, savedShapes } from './decoder-layer-graph.js';

/** Floats per token the fused layer keeps for its backward (savedShapes at batch 1, divided by the sequence length). */
function fusedLayerSavedFloats(d: LayerDims): number {
  // one saved LoRA input per adapted projection (savedShapes keys them by module: any distinct names do)
  const lora = d.loraRanks.map((rank, i) => ({ module: PROJECTIONS[i % PROJECTIONS.length]!, rank, scaling: 1, dropout: false }));
  const shapes = savedShapes({ hidden: d.hidden, intermediate: d.intermediate, heads: d.heads, kvHeads: d.kvHeads, eps: 0, lora, dropoutRate: 0 }, 1, d.seq);
  let floats = 0;
  for (const shape of Object.values(shapes)) floats += shape.reduce((a, b) => a * b, 1);
  return floats / d.seq;
}

export const NATIVE_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'native',
  transposeFlagsFree: true,
  headChunk: { min: HEAD_CHUNK_TOKENS, max: 1024, maxLogitsBytes: 256 * 1024 * 1024 },
  threads: { dataParallel: false, why: 'the native backend already uses every core' },
  activationFactor: JS_BACKEND_ACTIVATION_FACTOR,
  fusedLayerSavedFloats,
  runtimeBytes: 0.6e9,
};
