/**
 * The GPU kit's one program (bundled by build.sh into kit.mjs; run by run.sh on the GPU machine):
 *
 *   node kit.mjs info                                 the WebGPU adapter Dawn finds, and its limits
 *   node kit.mjs parity  [--fixtures DIR]             tiny-llama logits / loss / every gradient norm vs the PyTorch golden
 *   node kit.mjs bench   --config bench|large|smoke [--steps 3] [--modes stage2,full]
 *   node kit.mjs lora7b  [--layers 1,2,4,8] [--budget-s 150] [--shape 7b|smoke] [--steps 2]
 *   node kit.mjs ortgpu  [--shape smollm,tinyllama|smoke] [--iters 10] [--cpu-iters 3]   (ortgpu.ts)
 *
 * Every command but ortgpu runs on `--backend webgpu` unless `--backend` says otherwise, reads values
 * only with await data(), and prints one JSON line per result (prefixed `RESULT `) besides the human
 * lines. ortgpu runs onnxruntime-node's own WebGPU execution provider (ORT's built-in Dawn), so tfjs's
 * backend is not started beside it.
 *
 * bench: full optimizer steps (forward + backward + clip + AdamW) through the trainer's own loop on
 * random token ids; tokens/s over the steps after the first (which compiles the shaders).
 * lora7b: one LoRA step (r 8 on q/k/v/o, dropout 0.05, embed/lm_head frozen) of a LLaMA-7B-shaped
 * model (hidden 4096, 32 heads, inter 11008, vocab 49,954, seq 512, batch 1) with 1, 2, 4, … layers
 * until the time budget is spent: step time, per-layer time (the slope), and peak tensor bytes.
 * Weights are a cheap repeating pattern (every layer shares its host arrays): speed, not quality.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createLlamaConfig } from '@cllama/lora';
import * as trainer from '@cllama/trainer';
import {
  initBackend,
  loadLlama,
  LlamaModel,
  llamaWeightShapes,
  webgpuAdapter,
  type BackendChoice,
  type BackendInfo,
  type BatchSource,
  type LlamaConfig,
  type WeightTensor,
} from '@cllama/trainer';
import { timedTrainingSteps } from '../../packages/trainer/bench/timed-steps.js';
import { ortgpu } from './ortgpu.js';

const argv = process.argv.slice(2);
const command = argv[0] ?? 'info';
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const result = (r: Record<string, unknown>) => console.log(`RESULT ${JSON.stringify(r)}`);

let backend: BackendInfo;

// ------------------------------------------------------------------------------------------ info

async function info(): Promise<void> {
  const adapter = await webgpuAdapter();
  const device = (tf.backend() as unknown as { device?: { limits: Record<string, number> } }).device;
  console.log(`backend ${backend.name} via ${backend.package}: ${backend.reason}`);
  console.log(`adapter ${JSON.stringify(adapter)}`);
  if (device)
    console.log(`device limits: maxBufferSize ${device.limits.maxBufferSize}, maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}`);
  result({
    command: 'info',
    backend: backend.name,
    adapter,
    maxBufferSize: device?.limits.maxBufferSize,
    maxStorageBufferBindingSize: device?.limits.maxStorageBufferBindingSize,
  });
}

// ------------------------------------------------------------------------------------------ parity

async function parity(): Promise<void> {
  const root = arg('fixtures', path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures'));
  let ok = true;
  for (const fixture of ['tiny-llama', 'tiny-llama-gqa', 'tiny-llama-tied']) {
    const dir = path.join(root, fixture);
    const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8'));
    const model = await loadLlama(dir);
    const ids = tf.tensor2d(golden.input_ids, undefined, 'int32');
    const labels = tf.tensor2d(golden.labels, undefined, 'int32');
    const logits = model.logits(ids);
    let sum = 0;
    let absSum = 0;
    for (const x of await logits.data()) {
      sum += x;
      absSum += Math.abs(x);
    }
    logits.dispose();
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, { chunkTokens: 20 }));
    const loss = (await value.data())[0]!;
    let worstGrad = 0;
    for (const [name, variable] of model.namedVariables()) {
      let s = 0;
      for (const x of await grads[variable.name]!.data()) s += x * x;
      worstGrad = Math.max(worstGrad, Math.abs(Math.sqrt(s) - golden.grad_norms[name]) / golden.grad_norms[name]);
    }
    tf.dispose([value, ...Object.values(grads), ids, labels]);
    model.dispose();
    const r = {
      fixture,
      logitsSumRel: Math.abs(sum - golden.logits_sum) / Math.abs(golden.logits_sum),
      logitsAbsSumRel: Math.abs(absSum - golden.logits_abs_sum) / Math.abs(golden.logits_abs_sum),
      lossAbs: Math.abs(loss - golden.loss),
      worstGradNormRel: worstGrad,
    };
    // the test suite's tolerances (model-parity.test.ts)
    const pass = r.logitsSumRel < 1e-4 && r.logitsAbsSumRel < 1e-4 && r.lossAbs < 1e-5 && r.worstGradNormRel < 1e-3;
    ok &&= pass;
    console.log(
      `${pass ? 'PASS' : 'FAIL'} ${fixture}: logits sum ${r.logitsSumRel.toExponential(2)} rel, |logits| ${r.logitsAbsSumRel.toExponential(2)} rel, loss ${r.lossAbs.toExponential(2)} abs, worst grad norm ${r.worstGradNormRel.toExponential(2)} rel`,
    );
    result({ command: 'parity', pass, ...r });
  }
  if (!ok) process.exitCode = 1;
}

// ------------------------------------------------------------------------------------------ models

/** Weights as a cheap repeating pattern, one host array per distinct shape (shared by all layers). */
function patternWeights(config: LlamaConfig): WeightTensor[] {
  const byShape = new Map<string, Float32Array>();
  const out: WeightTensor[] = [];
  for (const [name, shape] of llamaWeightShapes(config)) {
    const key = `${shape.length}:${shape.join('x')}`;
    let data = byShape.get(key);
    if (!data) {
      data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (shape.length === 1) data.fill(1);
      else {
        let s = 0x9e3779b9 ^ data.length;
        for (let i = 0; i < data.length; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          data[i] = ((s >>> 8) / 16777216 - 0.5) * 0.04; // uniform, std ≈ 0.0115
        }
      }
      byShape.set(key, data);
    }
    out.push({ name, shape, data });
  }
  return out;
}

function randomBatches(n: number, batch: number, seq: number, vocab: number): BatchSource {
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const rows = Array.from({ length: n * batch }, () => Int32Array.from({ length: seq }, () => next() % vocab));
  return {
    length: rows.length,
    batch(idx) {
      const ids = new Int32Array(idx.length * seq);
      for (let i = 0; i < idx.length; i++) ids.set(rows[idx[i]!]!, i * seq);
      return { inputIds: ids, labels: ids, batch: idx.length, seqLen: seq };
    },
  };
}

const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

/** Trainable set of a bench mode: stage2 = LoRA r8 on q/k/v/o + embed_tokens/lm_head; full = all; lora = LoRA only. */
function trainable(model: LlamaModel, mode: string): Array<{ name: string; variable: tf.Variable }> {
  let names: string[];
  if (mode === 'full') names = [...model.namedVariables().keys()];
  else {
    model.attachLora({ r: 8, loraAlpha: 32, loraDropout: 0.05, targetModules: LORA_TARGETS }, undefined, 0);
    names = [...model.namedVariables((n) => n.includes('.lora_')).keys()];
    if (mode === 'stage2') names.push('model.embed_tokens.weight', 'lm_head.weight');
  }
  const chosen = new Set(names);
  model.setTrainable((n) => chosen.has(n));
  const all = model.namedVariables();
  return names.map((name) => ({ name, variable: all.get(name)! }));
}

// ------------------------------------------------------------------------------------------ bench

const CONFIGS: Record<string, { hidden: number; inter: number; layers: number; heads: number; vocab: number; seq: number; batch: number }> = {
  // packages/trainer/bench/train.ts's config
  bench: { hidden: 256, inter: 688, layers: 4, heads: 8, vocab: 49954, seq: 256, batch: 4 },
  // the larger config (inter = 2.6875 × hidden, as the bench config)
  large: { hidden: 1024, inter: 2752, layers: 8, heads: 16, vocab: 49954, seq: 512, batch: 8 },
  // a few seconds on a software adapter: checks that the kit runs
  smoke: { hidden: 32, inter: 86, layers: 2, heads: 4, vocab: 512, seq: 32, batch: 2 },
};

async function bench(): Promise<void> {
  const name = arg('config', 'bench');
  const c = CONFIGS[name];
  if (!c) throw new Error(`--config must be one of ${Object.keys(CONFIGS).join(', ')}`);
  const steps = Number(arg('steps', '3'));
  const config = createLlamaConfig({
    hiddenSize: c.hidden,
    intermediateSize: c.inter,
    numHiddenLayers: c.layers,
    numAttentionHeads: c.heads,
    vocabSize: c.vocab,
    maxPositionEmbeddings: Math.max(512, c.seq),
  });
  console.log(
    `bench ${name}: hidden ${c.hidden}, ${c.layers} layers, ${c.heads} heads, inter ${c.inter}, vocab ${c.vocab}, batch ${c.batch} × seq ${c.seq}; ${steps} measured steps after 1 warm-up`,
  );
  for (const mode of arg('modes', 'stage2,full').split(',')) {
    const model = new LlamaModel(config, patternWeights(config));
    const params = trainable(model, mode);
    const seconds = await timedTrainingSteps(trainer, model, params, randomBatches(steps + 1, c.batch, c.seq, c.vocab), { batch: c.batch, steps: steps + 1 });
    const measured = seconds.slice(1);
    const tokensPerSecond = (c.batch * c.seq * measured.length) / measured.reduce((a, b) => a + b, 0);
    console.log(`${mode.padEnd(7)} ${tokensPerSecond.toFixed(0).padStart(8)} tok/s   (step seconds: ${seconds.map((s) => s.toFixed(3)).join(', ')})`);
    result({ command: 'bench', config: name, mode, tokensPerSecond, stepSeconds: seconds, backend: backend.name });
    model.dispose();
  }
}

// ------------------------------------------------------------------------------------------ lora7b

async function lora7b(): Promise<void> {
  const shape = arg('shape', '7b');
  const dims =
    shape === 'smoke' ? { hidden: 64, inter: 172, heads: 4, vocab: 512, seq: 32 } : { hidden: 4096, inter: 11008, heads: 32, vocab: 49954, seq: 512 };
  const budget = Number(arg('budget-s', '150'));
  const started = performance.now();
  const rows: Array<{ layers: number; stepSeconds: number; peakBytes: number }> = [];
  console.log(
    `LoRA step (r 8 on q/k/v/o) of a ${shape}-shaped LLaMA: hidden ${dims.hidden}, ${dims.heads} heads, inter ${dims.inter}, vocab ${dims.vocab}, batch 1 × seq ${dims.seq}; time budget ${budget} s`,
  );
  for (const layers of arg('layers', '1,2,4,8,16,32').split(',').map(Number)) {
    const elapsed = (performance.now() - started) / 1000;
    // the next run costs about twice the last one: stop before the budget runs out
    const last = rows.at(-1);
    if (last && elapsed + 2.5 * (elapsed / rows.length) * (layers / last.layers) > budget) break;
    const config = createLlamaConfig({
      hiddenSize: dims.hidden,
      intermediateSize: dims.inter,
      numHiddenLayers: layers,
      numAttentionHeads: dims.heads,
      vocabSize: dims.vocab,
      maxPositionEmbeddings: dims.seq,
    });
    const model = new LlamaModel(config, patternWeights(config));
    const params = trainable(model, 'lora');
    const data = randomBatches(4, 1, dims.seq, dims.vocab);
    const timed = Number(arg('steps', '2'));
    const seconds = await timedTrainingSteps(trainer, model, params, data, { batch: 1, steps: timed + 1 });
    // peak tensor bytes of one forward + backward (tf.profile tracks them; the optimizer adds 2 × the LoRA weights)
    const b0 = data.batch([3]);
    const ids = tf.tensor2d(b0.inputIds, [1, dims.seq], 'int32');
    const profile = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(
        () => model.loss(ids, ids),
        params.map((p) => p.variable),
      );
      return [value, ...Object.values(grads)];
    });
    tf.dispose([ids, ...(profile.result as tf.Tensor[])]);
    const peak = profile.peakBytes;
    const stepSeconds = seconds.slice(1).reduce((x, y) => x + y, 0) / (seconds.length - 1);
    rows.push({ layers, stepSeconds, peakBytes: peak });
    console.log(
      `${String(layers).padStart(3)} layers: step ${stepSeconds.toFixed(3)} s (first, with shader compilation: ${seconds[0]!.toFixed(3)} s); peak tensor memory (forward + backward) ${(peak / 2 ** 30).toFixed(2)} GiB`,
    );
    result({ command: 'lora7b', shape, layers, stepSeconds, firstStepSeconds: seconds[0], peakTensorBytes: peak });
    model.dispose();
  }
  if (rows.length >= 2) {
    const a = rows[0]!;
    const b = rows.at(-1)!;
    const perLayer = (b.stepSeconds - a.stepSeconds) / (b.layers - a.layers);
    const bytesPerLayer = (b.peakBytes - a.peakBytes) / (b.layers - a.layers);
    console.log(
      `per layer: ${perLayer.toFixed(3)} s, ${(bytesPerLayer / 2 ** 30).toFixed(2)} GiB; a 32-layer step ≈ ${(a.stepSeconds + perLayer * (32 - a.layers)).toFixed(2)} s, ≈ ${((a.peakBytes + bytesPerLayer * (32 - a.layers)) / 2 ** 30).toFixed(1)} GiB`,
    );
    result({
      command: 'lora7b-summary',
      shape,
      perLayerSeconds: perLayer,
      perLayerBytes: bytesPerLayer,
      estimated32LayerStepSeconds: a.stepSeconds + perLayer * (32 - a.layers),
    });
  }
}

const commands: Record<string, () => Promise<void>> = { info, parity, bench, lora7b, ortgpu: () => ortgpu(arg) };
if (!commands[command]) throw new Error(`unknown command '${command}': use ${Object.keys(commands).join(', ')}`);
if (command !== 'ortgpu') backend = await initBackend(arg('backend', 'webgpu') as BackendChoice);
await commands[command]!();
