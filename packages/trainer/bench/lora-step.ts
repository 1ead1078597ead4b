/**
 * One LoRA training step of a real model shape (random weights), next to PyTorch's: r 8 on the seven
 * projections, dropout 0.05, fp32, batch 1 — forward + backward + clip + AdamW through the trainer's
 * own loop — with the step time and the process's peak RSS.
 *
 *   node --import tsx packages/trainer/bench/lora-step.ts --shape smollm|tinyllama [--backend native] [--seq 512] [--steps 2]
 *   /usr/bin/python3 packages/trainer/bench/lora_step_torch.py smollm|tinyllama [seq] [steps]
 *
 * Shapes: SmolLM-135M (hidden 576, 30 layers, 9 heads / 3 kv heads, inter 1536, vocab 49,152; untied
 * here, so 162 M parameters) and TinyLlama-1.1B (hidden 2048, 22 layers, 32 / 4 heads, inter 5632,
 * vocab 32,000). Weights come from a fast LCG (tf.randomNormal on the cpu backend would take minutes
 * for 1.1 B values); the memory check of src/memory.ts runs first, as in a real session.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createLlamaConfig } from '@cllama/lora';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { checkMemory } from '../src/memory.js';
import { LlamaModel, llamaWeightShapes, type WeightTensor } from '../src/model/llama.js';
import { runTrainingLoop, type BatchSource } from '../src/train/loop.js';
import { loopModel } from '../src/train/session.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const SHAPES = {
  smollm: { hiddenSize: 576, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3, intermediateSize: 1536, vocabSize: 49152 },
  tinyllama: { hiddenSize: 2048, numHiddenLayers: 22, numAttentionHeads: 32, numKeyValueHeads: 4, intermediateSize: 5632, vocabSize: 32000 },
};
const shapeName = arg('shape', 'smollm') as keyof typeof SHAPES;
const SEQ = Number(arg('seq', '512'));
const STEPS = Number(arg('steps', '2'));
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const config = createLlamaConfig({ ...SHAPES[shapeName], maxPositionEmbeddings: 2048 });

const backend = await initBackend(arg('backend', 'native') as BackendChoice);
let estimate: ReturnType<typeof checkMemory>;
try {
  estimate = checkMemory(config, { kind: 'lora', batchSize: 1, seqLen: SEQ, r: 8, targetModules: TARGETS, modulesToSave: [] }, { backend: backend.name });
} catch (err) {
  console.error(`lora-step: ${(err as Error).message}`);
  process.exit(1);
}
console.log(
  `backend ${backend.name}${backend.fallbackReason ? ` (${backend.fallbackReason})` : ''}; ${shapeName} ${(estimate.parameters / 1e6).toFixed(0)} M parameters, seq ${SEQ}; memory estimate ${(estimate.totalBytes / 1e9).toFixed(1)} GB`,
);

function* weights(): Generator<WeightTensor> {
  let s = 12345;
  for (const [name, shape] of llamaWeightShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.07; // std ≈ 0.02
    yield { name, shape, data };
  }
}
let t = performance.now();
const model = new LlamaModel(config, weights());
model.attachLora({ r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: TARGETS }, undefined, 0);
const names = [...model.namedVariables((n) => n.includes('.lora_')).keys()];
const chosen = new Set(names);
model.setTrainable((n) => chosen.has(n));
const all = model.namedVariables();
const params = names.map((name) => ({ name, variable: all.get(name)! }));
console.log(`model built in ${((performance.now() - t) / 1000).toFixed(1)} s; RSS ${(process.memoryUsage().rss / 1e9).toFixed(2)} GB`);

let seed = 777;
const rows = Array.from({ length: STEPS }, () =>
  Int32Array.from({ length: SEQ }, () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % config.vocabSize),
);
const data: BatchSource = { length: STEPS, batch: (idx) => ({ inputIds: rows[idx[0]!]!, labels: rows[idx[0]!]!, batch: 1, seqLen: SEQ }) };
const out = await mkdtemp(path.join(tmpdir(), 'cllama-lora-step-'));
const stamps: number[] = [];
t = performance.now();
await runTrainingLoop(
  loopModel(model),
  params,
  data,
  undefined,
  { writeWeights: async () => undefined, restoreWeights: async () => undefined, writeFinal: async () => undefined },
  {
    outputDir: out,
    seed: 0,
    perDeviceTrainBatchSize: 1,
    perDeviceEvalBatchSize: 1,
    gradientAccumulationSteps: 1,
    numTrainEpochs: 1,
    maxSteps: STEPS,
    learningRate: 1e-4,
    lrSchedulerType: 'constant',
    warmupRatio: 0,
    warmupSteps: 0,
    weightDecay: 0.01,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    maxGradNorm: 1,
    loggingSteps: 1000,
    loggingFirstStep: false,
    evalSteps: undefined,
    doEval: false,
    saveSteps: 1_000_000,
    saveTotalLimit: 1,
    resumeFrom: undefined,
    progress: false,
    onStep: () => void stamps.push(performance.now()),
  },
);
await rm(out, { recursive: true, force: true });
const steps = [stamps[0]! - t, ...stamps.slice(1).map((x, i) => x - stamps[i]!)].map((ms) => ms / 1000);
const best = Math.min(...(steps.length > 1 ? steps.slice(1) : steps));
const peak = process.resourceUsage().maxRSS * 1024;
console.log(
  `${shapeName} seq ${SEQ}: step seconds ${steps.map((x) => x.toFixed(2)).join(', ')}; ${(SEQ / best).toFixed(0)} tok/s; peak RSS ${(peak / 1e9).toFixed(2)} GB (estimate ${(estimate.totalBytes / 1e9).toFixed(1)} GB)`,
);
model.dispose();
