/**
 * Training throughput on the bench config (hidden 256, 4 layers, 8 heads, inter 688, vocab 49,954,
 * seq 256, batch 4): tokens/s of full optimizer steps (forward + backward + clip + AdamW) for
 * stage 1 (embed_tokens only), stage 2 (LoRA r=8 on q/k/v/o + embed_tokens/lm_head) and full
 * fine-tuning, next to PyTorch on the same machine, plus a per-kernel time breakdown of one step.
 *
 *   node --import tsx packages/trainer/bench/train.ts [--steps 3] [--backend wasm|webgpu|native|…] [--threads 1,2] [--no-profile] [--json out.json]
 *   (on a GPU machine without Node: the GPU kit, bench/gpu-kit, runs the same steps with --backend webgpu)
 *
 * `--threads` lists the data-parallel thread counts to measure (src/train/data-parallel.ts); each
 * thread holds a model copy and computes the gradients of batch / threads sequences. With
 * `--backend native` use `--threads 1`: onnxruntime's own pool sets the cores (CLLAMA_NATIVE_THREADS).
 *
 * PyTorch figures: packages/trainer/bench/train_torch.py (same config, same trainable sets, fp32,
 * torch 1.13 + OpenBLAS); the defaults below are the numbers the issue quotes for this machine.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFile } from 'node:fs/promises';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { createLlamaConfig } from '@cllama/lora';
import { LlamaModel } from '../src/model/llama.js';
import { DataParallel } from '../src/train/data-parallel.js';
import type { BatchSource } from '../src/train/loop.js';
import { loopModel } from '../src/train/session.js';
import { timedTrainingSteps } from './timed-steps.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const STEPS = Number(arg('steps', '3'));
const BACKEND = arg('backend', 'wasm') as BackendChoice;
const TORCH: Record<string, number> = {
  stage1: Number(arg('torch-stage1', '538')),
  stage2: Number(arg('torch-stage2', '485')),
  full: Number(arg('torch-full', '464')),
};
// data parallelism is a CPU feature: on webgpu one process drives the device
const THREADS = arg('threads', BACKEND === 'webgpu' ? '1' : '1,2')
  .split(',')
  .map(Number);
const MODES = arg('modes', 'stage1,stage2,full').split(',');
const BATCH = 4;
const SEQ = 256;

const config = createLlamaConfig({
  hiddenSize: 256,
  intermediateSize: 688,
  numHiddenLayers: 4,
  numAttentionHeads: 8,
  vocabSize: 49954,
  maxPositionEmbeddings: 512,
});

function randomBatches(n: number): BatchSource {
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const rows = Array.from({ length: n }, () => Int32Array.from({ length: SEQ }, () => next() % config.vocabSize));
  return {
    length: n,
    batch(idx) {
      const ids = new Int32Array(idx.length * SEQ);
      for (let i = 0; i < idx.length; i++) ids.set(rows[idx[i]!]!, i * SEQ);
      return { inputIds: ids, labels: ids, batch: idx.length, seqLen: SEQ };
    },
  };
}

function setUp(mode: string): { model: LlamaModel; params: Array<{ name: string; variable: tf.Variable }> } {
  const model = LlamaModel.random(config, 0);
  let names: string[];
  if (mode === 'stage1') names = ['model.embed_tokens.weight'];
  else if (mode === 'full') names = [...model.namedVariables().keys()];
  else {
    model.attachLora({ r: 8, loraAlpha: 32, loraDropout: 0.05, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }, undefined, 0);
    names = [...model.namedVariables((n) => n.includes('.lora_')).keys(), 'model.embed_tokens.weight', 'lm_head.weight'];
  }
  const chosen = new Set(names);
  model.setTrainable((n) => chosen.has(n));
  const all = model.namedVariables();
  return { model, params: names.map((name) => ({ name, variable: all.get(name)! })) };
}

async function measure(mode: string, threads: number): Promise<{ tokensPerSecond: number; stepSeconds: number[] }> {
  const { model, params } = setUp(mode);
  const lora = mode === 'stage2' ? { r: 8, loraAlpha: 32, loraDropout: 0.05, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } : undefined;
  const dataParallel = threads > 1 ? await DataParallel.start({ threads, backend: BACKEND === 'auto' ? 'wasm' : BACKEND, model, params, lora }) : undefined;
  // step 1 includes kernel compilation / first allocations: measure steps 2..N+1
  const stepSeconds = await timedTrainingSteps(model, params, randomBatches(BATCH * (STEPS + 1)), { batch: BATCH, steps: STEPS + 1, dataParallel }).finally(
    () => dataParallel?.close(),
  );
  const measured = stepSeconds.slice(1);
  const tokensPerSecond = (BATCH * SEQ * measured.length) / measured.reduce((a, b) => a + b, 0);
  model.dispose();
  return { tokensPerSecond, stepSeconds };
}

/** Per-kernel time of one forward + backward (the optimizer's kernels are tiny element-wise ops). */
async function profile(mode: string): Promise<Array<{ kernel: string; ms: number; calls: number }>> {
  const { model, params } = setUp(mode);
  const b = randomBatches(BATCH).batch([0, 1, 2, 3]);
  const lm = loopModel(model);
  lm.setTraining(true);
  const run = () =>
    tf.tidy(() => {
      const ids = tf.tensor2d(b.inputIds, [BATCH, SEQ], 'int32');
      const { value, grads } = tf.variableGrads(
        () => lm.loss(ids, ids),
        params.map((p) => p.variable),
      );
      return [value, ...Object.values(grads)];
    });
  tf.dispose(run()); // warm-up
  const info = await tf.profile(() => run());
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byKernel.set(k.name, e);
  }
  tf.dispose(info.result as tf.Tensor[]);
  model.dispose();
  return [...byKernel].map(([kernel, e]) => ({ kernel, ...e })).sort((x, y) => y.ms - x.ms);
}

const backend = await initBackend(BACKEND);
console.log(
  `backend ${backend.name} (${backend.package}); batch ${BATCH} × seq ${SEQ} = ${BATCH * SEQ} tokens per step; ${STEPS} measured steps after 1 warm-up`,
);
const results: Record<string, unknown> = {};
for (const mode of MODES) {
  const runs: Record<string, unknown> = {};
  for (const threads of THREADS) {
    const m = await measure(mode, threads);
    const ratio = m.tokensPerSecond / TORCH[mode]!;
    console.log(
      `${mode.padEnd(7)} threads ${threads}  ${m.tokensPerSecond.toFixed(0).padStart(6)} tok/s   PyTorch ${TORCH[mode]} tok/s   ratio ${ratio.toFixed(2)}×   (step seconds: ${m.stepSeconds.map((s) => s.toFixed(2)).join(', ')})`,
    );
    runs[`threads${threads}`] = { tokensPerSecond: m.tokensPerSecond, ratio, stepSeconds: m.stepSeconds };
  }
  if (process.argv.includes('--no-profile')) {
    results[mode] = { torchTokensPerSecond: TORCH[mode], ...runs };
    continue;
  }
  const kernels = await profile(mode);
  const total = kernels.reduce((a, k) => a + k.ms, 0);
  console.log(`  forward+backward kernels (1 thread): ${total.toFixed(0)} ms total; top:`);
  for (const k of kernels.slice(0, 10))
    console.log(`    ${k.kernel.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ms  ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  (${k.calls} calls)`);
  results[mode] = { torchTokensPerSecond: TORCH[mode], ...runs, kernels: kernels.slice(0, 15), kernelTotalMs: total };
}
const jsonOut = arg('json', '');
if (jsonOut) await writeFile(jsonOut, JSON.stringify({ backend, batch: BATCH, seq: SEQ, results }, null, 2));
