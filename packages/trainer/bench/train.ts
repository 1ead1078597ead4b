/**
 * Training throughput on the bench config (hidden 256, 4 layers, 8 heads, inter 688, vocab 49,954,
 * seq 256, batch 4): tokens/s of full optimizer steps (forward + backward + clip + AdamW) for
 * stage 1 (embed_tokens only), stage 2 (LoRA r=8 on q/k/v/o + embed_tokens/lm_head) and full
 * fine-tuning, next to PyTorch on the same machine, plus a per-kernel time breakdown of one step.
 *
 *   node --import tsx packages/trainer/bench/train.ts [--steps 3] [--backend wasm|webgpu|native|…] [--threads 1,2] [--no-profile]
 *        [--no-fused-layers] [--json out.json]
 *
 * The profile is the last measured step's time per kernel, forward and backward (bench/kernel-profile.ts).
 * `--no-fused-layers` runs the decoder layers as the op chain where the backend has the fused layer
 * kernel (native): the before/after of that kernel in one window.
 *   (on a GPU machine without Node: the GPU kit, bench/gpu-kit, runs the same steps with --backend webgpu)
 *
 * `--threads` lists the data-parallel thread counts to measure (src/train/data-parallel.ts); each
 * thread holds a model copy and computes the gradients of batch / threads sequences. With
 * `--backend native` use `--threads 1`: onnxruntime's own pool sets the cores (CLLAMA_NATIVE_THREADS).
 *
 * PyTorch figures: packages/trainer/bench/train_torch.py (same config, same trainable sets, fp32); the
 * defaults below are torch 2.13.0+cpu's (the wheel, MKL, 2 threads) on the 2-core machine on 2026-12-03
 * (docs/trainer.md); bench/vs-torch.sh measures both back to back instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFile } from 'node:fs/promises';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { createLlamaConfig } from '@cllama/lora';
import { LlamaModel } from '../src/model/llama.js';
import { DataParallel } from '../src/train/data-parallel.js';
import type { BatchSource } from '../src/train/micro-batch.js';
import { formatProfile, KernelProfile, type KernelTimes } from './kernel-profile.js';
import * as trainer from '../src/index.js';
import { timedTrainingSteps } from './timed-steps.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const STEPS = Number(arg('steps', '3'));
const BACKEND = arg('backend', 'wasm') as BackendChoice;
const TORCH: Record<string, number> = {
  stage1: Number(arg('torch-stage1', '1430')),
  stage2: Number(arg('torch-stage2', '1135')),
  full: Number(arg('torch-full', '1125')),
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

const FUSED_LAYERS = !process.argv.includes('--no-fused-layers');

function setUp(mode: string): { model: LlamaModel; params: Array<{ name: string; variable: tf.Variable }> } {
  const model = LlamaModel.random(config, 0);
  model.fusedLayers = FUSED_LAYERS;
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

let profiler: KernelProfile | undefined;

async function measure(
  mode: string,
  threads: number,
): Promise<{ tokensPerSecond: number; stepSeconds: number[]; profile: Map<string, KernelTimes> | undefined }> {
  const { model, params } = setUp(mode);
  const lora = mode === 'stage2' ? { r: 8, loraAlpha: 32, loraDropout: 0.05, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } : undefined;
  const dataParallel = threads > 1 ? await DataParallel.start({ threads, backend: BACKEND === 'auto' ? 'wasm' : BACKEND, model, params, lora }) : undefined;
  let profile: Map<string, KernelTimes> | undefined;
  if (profiler) {
    const loss = model.loss.bind(model);
    model.loss = (...a: Parameters<typeof loss>) => {
      profiler!.phase = 'forward';
      try {
        return loss(...a);
      } finally {
        profiler!.phase = 'backward';
      }
    };
  }
  // step 1 includes kernel compilation / first allocations: measure steps 2..N+1
  const stepSeconds = await timedTrainingSteps(trainer, model, params, randomBatches(BATCH * (STEPS + 1)), {
    batch: BATCH,
    steps: STEPS + 1,
    dataParallel,
    onStep: () => void (profile = profiler?.take()),
  }).finally(() => dataParallel?.close());
  const measured = stepSeconds.slice(1);
  const tokensPerSecond = (BATCH * SEQ * measured.length) / measured.reduce((a, b) => a + b, 0);
  model.dispose();
  return { tokensPerSecond, stepSeconds, profile };
}

const backend = await initBackend(BACKEND);
// the kernels of the main thread (data-parallel workers are not profiled)
if (!process.argv.includes('--no-profile')) profiler = new KernelProfile(backend.name);
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
    if (m.profile && threads === 1) {
      const stepMs = m.stepSeconds.at(-1)! * 1000;
      console.log(`  kernel times of the last step (${(stepMs / 1000).toFixed(2)} s):\n${formatProfile(m.profile, stepMs, 10)}`);
      runs.kernels = Object.fromEntries(m.profile);
    }
  }
  results[mode] = { torchTokensPerSecond: TORCH[mode], ...runs };
}
const jsonOut = arg('json', '');
if (jsonOut) await writeFile(jsonOut, JSON.stringify({ backend, batch: BATCH, seq: SEQ, results }, null, 2));
