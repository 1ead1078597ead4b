/**
 * One LoRA training step of a real model shape (random weights, batch 1, seq 512 by default):
 * forward + backward + clip + AdamW through the trainer's loop, its seconds and the process's peak
 * RSS, next to bench/lora_step_torch.py (the same step in plain eager PyTorch).
 *
 *   node --import tsx packages/trainer/bench/lora-step.ts --shape smollm|tinyllama [--settings lora|stage2|sft]
 *        [--checkpointing] [--backend native] [--seq 512] [--steps 2] [--profile]
 *
 * --profile: a per-kernel time breakdown of the last step, forward and backward (bench/kernel-profile.ts).
 * --no-fused-layers: the decoder layers as the op chain, where the backend has the fused layer kernel.
 */
import { createLlamaConfig } from '@cllama/lora';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { checkMemory } from '../src/memory.js';
import { LlamaModel, llamaWeightShapes, type WeightTensor } from '../src/model/llama.js';
import type { BatchSource } from '../src/train/micro-batch.js';
import { formatProfile, KernelProfile, type KernelTimes } from './kernel-profile.js';
import * as trainer from '../src/index.js';
import { timedTrainingSteps } from './timed-steps.js';

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
// --settings lora: r 8 on the 7 projections (the issue's PyTorch reference);
//   stage2: the recipe's stage 2, r 8 on q/k/v/o + embed_tokens and lm_head trained fully (modules_to_save);
//   sft: the recipe's SFT, r 8 on the 7 projections + embed_tokens and lm_head
const SETTINGS = arg('settings', 'lora');
if (!['lora', 'stage2', 'sft'].includes(SETTINGS)) throw new Error(`--settings ${SETTINGS}: use lora, stage2 or sft`);
const TARGETS =
  SETTINGS === 'stage2' ? ['q_proj', 'k_proj', 'v_proj', 'o_proj'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const MODULES_TO_SAVE = SETTINGS === 'lora' ? [] : ['embed_tokens', 'lm_head'];
// --checkpointing: recompute each layer's activations in the backward pass (--gradient-checkpointing)
const CHECKPOINTING = process.argv.includes('--checkpointing');
const config = createLlamaConfig({ ...SHAPES[shapeName], maxPositionEmbeddings: 2048 });

const backend = await initBackend(arg('backend', 'native') as BackendChoice);
let estimate: ReturnType<typeof checkMemory>;
try {
  estimate = checkMemory(
    config,
    { kind: 'lora', batchSize: 1, seqLen: SEQ, r: 8, targetModules: TARGETS, modulesToSave: MODULES_TO_SAVE, gradientCheckpointing: CHECKPOINTING },
    { backend: backend.name },
  );
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
const t = performance.now();
const model = new LlamaModel(config, weights());
model.attachLora({ r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: TARGETS }, undefined, 0);
model.gradientCheckpointing = CHECKPOINTING;
model.fusedLayers = !process.argv.includes('--no-fused-layers');
const names = [...model.namedVariables((n) => n.includes('.lora_')).keys(), ...(MODULES_TO_SAVE.length ? ['model.embed_tokens.weight', 'lm_head.weight'] : [])];
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
const profile = process.argv.includes('--profile') ? new KernelProfile(backend.name) : undefined;
let lastProfile: Map<string, KernelTimes> | undefined;
if (profile) {
  const loss = model.loss.bind(model);
  model.loss = (...a: Parameters<typeof loss>) => {
    profile.phase = 'forward';
    try {
      return loss(...a);
    } finally {
      profile.phase = 'backward';
    }
  };
}
const steps = await timedTrainingSteps(trainer, model, params, data, { batch: 1, steps: STEPS, onStep: () => void (lastProfile = profile?.take()) });
const best = Math.min(...(steps.length > 1 ? steps.slice(1) : steps));
const peak = process.resourceUsage().maxRSS * 1024;
console.log(
  `${shapeName} ${SETTINGS}${CHECKPOINTING ? ' checkpointing' : ''} seq ${SEQ}: step seconds ${steps.map((x) => x.toFixed(2)).join(', ')}; ${(SEQ / best).toFixed(0)} tok/s; peak RSS ${(peak / 1e9).toFixed(2)} GB (estimate ${(estimate.totalBytes / 1e9).toFixed(1)} GB)`,
);
if (lastProfile) console.log(`kernel times of the last step (${steps.at(-1)!.toFixed(2)} s):\n${formatProfile(lastProfile, steps.at(-1)! * 1000)}`);
model.dispose();
