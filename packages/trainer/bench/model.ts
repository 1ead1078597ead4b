/**
 * Model throughput on the bench config (hidden 256, 4 layers, 8 heads, intermediate 688,
 * vocab 49,954, batch 4 × seq 256), wasm backend by default:
 *   - training step tokens/s, embeddings only (the PyTorch reference figure on this machine is
 *     538 tok/s for that) and with every weight trainable;
 *   - generation tokens/s (KV cache, greedy);
 *   - where the time goes: tf.profile of one step, kernel time summed per kernel.
 *
 * Run by hand:  npx tsx packages/trainer/bench/model.ts [--backend wasm] [--steps 3] [--no-profile]
 */
import * as tf from '@tensorflow/tfjs-core';
import { createLlamaConfig } from '@cllama/lora';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { generate } from '../src/generate.js';
import { LlamaModel } from '../src/model/llama.js';
import { WASM_HEAD_BLOCK_ROWS } from '../src/backends/wasm/facts.js';

const PYTORCH_EMBED_ONLY_TOKENS_PER_S = 538;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const backendChoice = arg('backend', 'wasm') as BackendChoice;
const steps = Number(arg('steps', '3'));
const batch = Number(arg('batch', '4'));
const seq = Number(arg('seq', '256'));
const profile = !process.argv.includes('--no-profile');

const config = createLlamaConfig({
  hiddenSize: 256,
  intermediateSize: 688,
  numHiddenLayers: 4,
  numAttentionHeads: 8,
  vocabSize: 49954,
  maxPositionEmbeddings: 2048,
});

const backend = await initBackend(backendChoice);
console.log(`backend: ${backend.name} (${backend.package}); batch ${batch} × seq ${seq}, vocab ${config.vocabSize}`);
const model = LlamaModel.random(config, 0);

const ids = new Int32Array(batch * seq);
let s = 12345;
for (let i = 0; i < ids.length; i++) ids[i] = (s = (s * 1103515245 + 12345) % 2 ** 31) % config.vocabSize;
const inputIds = tf.tensor2d(ids, [batch, seq], 'int32');

function trainStep(): number {
  const { value, grads } = tf.variableGrads(() => model.loss(inputIds, inputIds));
  const loss = value.dataSync()[0]!;
  // Touch every gradient so lazy backends finish the work.
  for (const g of Object.values(grads)) g.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

function timeSteps(label: string): number {
  trainStep(); // warm-up (kernel setup, allocation)
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) trainStep();
  const seconds = (performance.now() - t0) / 1000;
  const tokPerS = (batch * seq * steps) / seconds;
  console.log(`${label}: ${tokPerS.toFixed(1)} tok/s (${(seconds / steps).toFixed(2)} s/step)`);
  return tokPerS;
}

model.setTrainable((n) => n === 'model.embed_tokens.weight');
const embedOnly = timeSteps('train step, embeddings only');
console.log(
  `  vs PyTorch (this machine, embeddings only): ${PYTORCH_EMBED_ONLY_TOKENS_PER_S} tok/s → ratio ${(embedOnly / PYTORCH_EMBED_ONLY_TOKENS_PER_S).toFixed(2)}×`,
);
model.setTrainable(() => true);
timeSteps('train step, all weights');

if (profile) {
  model.setTrainable((n) => n === 'model.embed_tokens.weight');
  const info = await tf.profile(() => {
    trainStep();
  });
  const perKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  // BatchMatMul split by what it computes: the LM head (a vocab-sized dimension, or one of the frozen
  // head's vocabulary blocks), attention (per-head [seq, headDim] products on wasm, batched elsewhere)
  // or the decoder's linear layers.
  const headDims = new Set([config.vocabSize, WASM_HEAD_BLOCK_ROWS, config.vocabSize % WASM_HEAD_BLOCK_ROWS]);
  const headDim = config.hiddenSize / config.numAttentionHeads;
  const matMulKind = (shapes: number[][]): string => {
    if (shapes.some((sh) => sh.some((d) => headDims.has(d)))) return 'BatchMatMul/lm_head';
    if (shapes.some((sh) => (sh.length === 3 && sh[0]! > 1) || sh.includes(headDim))) return 'BatchMatMul/attention';
    return 'BatchMatMul/linear';
  };
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const name = k.name === 'BatchMatMul' ? matMulKind(k.inputShapes as number[][]) : k.name;
    const e = perKernel.get(name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    perKernel.set(name, e);
    // Custom-gradient ops show up as 'unnamed scope' around kernels that are also listed: not summed.
    if (name !== 'unnamed scope') total += ms;
  }
  console.log(
    `profile of one embeddings-only step: ${total.toFixed(0)} ms in kernels ('unnamed scope' = the custom-gradient ops, whose inner kernels are listed too; not in the total)`,
  );
  for (const [name, e] of [...perKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14)) {
    console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(0).padStart(7)} ms  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  (${e.calls} calls)`);
  }
  model.setTrainable(() => true);
}

// Generation: 16-token prompt, 64 new tokens, greedy.
const prompt = Array.from(ids.subarray(0, 16));
await generate(model, prompt, { maxNewTokens: 4, eosTokenId: null });
const g0 = performance.now();
const out = await generate(model, prompt, { maxNewTokens: 64, eosTokenId: null });
const gs = (performance.now() - g0) / 1000;
console.log(`generation (KV cache, greedy, batch 1): ${(out.length / gs).toFixed(1)} tok/s`);

tf.dispose(inputIds);
model.dispose();
