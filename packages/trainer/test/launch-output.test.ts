/**
 * What train.py (transformers Trainer + peft) leaves in its output folder is taken like our own:
 * adapter_model.safetensors + adapter_config.json at the top (PEFT's current config keys, PEFT key
 * names), checkpoint-N/ subfolders with HF's pickles beside the adapter, trainer_state.json in HF's
 * format, metrics.jsonl written by train.py's own cllama_entry(). The folder is built from a
 * TypeScript-trained adapter with our safetensors writer; `cllama-lora info|merge` and
 * `cllama-train score --lora` must give exactly what they give for the original adapter.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readPeftAdapter, writeSafetensors } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/train/metrics.js';
import { renderTrainingPlot } from '../src/train/plot.js';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';
import { FIXTURES, REPO_ROOT, TINY_LLAMA } from './helpers.js';

const run = promisify(execFile);
/** A python3 that has numpy (train.py imports it): $PYTHON, the one on PATH, or Debian's. */
const PYTHON =
  [process.env.PYTHON, 'python3', '/usr/bin/python3'].find((py) => {
    if (!py) return false;
    try {
      execFileSync(py, ['-c', 'import numpy'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }) ?? 'python3';
const TRAIN_CLI = path.join(REPO_ROOT, 'packages/trainer/dist/cli.js');
const LORA_CLI = path.join(REPO_ROOT, 'packages/lora/dist/cli.js');
const TRAIN_PY_DIR = path.join(REPO_ROOT, 'packages/trainer/launch-template');
const ZH_TOKENIZER = path.join(FIXTURES, 'tokenizers/chinese_sp.model');

let root: string;
let ours: string; // cllama-train output
let hf: string; // the same adapter, laid out as train.py / HF Trainer writes it

/** adapter_config.json as current peft (0.17+) writes it: every field, target_modules as an unordered list. */
function peftConfigJson(
  c: { r: number; loraAlpha: number; loraDropout: number; targetModules: string[]; modulesToSave: string[] },
  base: string,
): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: base,
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.loraAlpha,
    lora_bias: false,
    lora_dropout: c.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: c.modulesToSave,
    peft_type: 'LORA',
    peft_version: '0.21.2',
    qalora_group_size: 16,
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...c.targetModules].reverse(),
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
  };
}

/** HF Trainer's log_history for 4 steps, logging every step, eval every 2 (with eval_on_start). */
const HF_LOG_HISTORY = [
  { epoch: 0, eval_loss: 10.02, eval_runtime: 0.1, eval_samples_per_second: 90.0, eval_steps_per_second: 10.0, step: 0 },
  { epoch: 0.0317, grad_norm: 3.91, learning_rate: 0.002, loss: 10.03, step: 1 },
  { epoch: 0.0635, grad_norm: 3.55, learning_rate: 0.0017, loss: 9.81, step: 2 },
  { epoch: 0.0635, eval_loss: 9.7, eval_runtime: 0.1, eval_samples_per_second: 90.0, eval_steps_per_second: 10.0, step: 2 },
  { epoch: 0.0952, grad_norm: 3.2, learning_rate: 0.001, loss: 9.6, step: 3 },
  { epoch: 0.127, grad_norm: 3.1, learning_rate: 0.0003, loss: 9.41, step: 4 },
  { epoch: 0.127, eval_loss: 9.35, eval_runtime: 0.1, eval_samples_per_second: 90.0, eval_steps_per_second: 10.0, step: 4 },
  { epoch: 0.127, step: 4, total_flos: 1234.0, train_loss: 9.71, train_runtime: 3.2, train_samples_per_second: 5.0, train_steps_per_second: 1.25 },
];

function hfTrainerState(globalStep: number): Record<string, unknown> {
  return {
    best_global_step: null,
    best_metric: null,
    best_model_checkpoint: null,
    epoch: 0.127,
    eval_steps: 2,
    global_step: globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: HF_LOG_HISTORY.filter((e) => e.step <= globalStep),
    logging_steps: 1,
    max_steps: 4,
    num_input_tokens_seen: 0,
    num_train_epochs: 1,
    save_steps: 2,
    stateful_callbacks: {
      TrainerControl: {
        args: { should_epoch_stop: false, should_evaluate: false, should_log: false, should_save: true, should_training_stop: true },
        attributes: {},
      },
    },
    total_flos: 1234.0,
    train_batch_size: 4,
    trial_name: null,
    trial_params: null,
  };
}

/** Writes an adapter folder as PEFT's save_pretrained does (safetensors + full config + model card). */
async function writeHfAdapter(dir: string, adapter: Awaited<ReturnType<typeof readPeftAdapter>>): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const tensors = [...adapter.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })).reverse();
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { metadata: { format: 'pt' } });
  await fs.writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify(peftConfigJson(adapter.config, TINY_LLAMA), null, 2));
  await fs.writeFile(path.join(dir, 'README.md'), '---\nbase_model: tiny-llama\nlibrary_name: peft\n---\n\n# Model Card for Model ID\n');
}

async function node(cli: string, args: string[]): Promise<string> {
  const { stdout } = await run('node', [cli, ...args], { maxBuffer: 1 << 26 });
  return stdout;
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-hfout-'));
  const zh = path.join(root, 'zh');
  await fs.mkdir(zh);
  const lines = (await fs.readFile(path.join(FIXTURES, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 80);
  await fs.writeFile(path.join(zh, 'zh.txt'), lines.join('\n'));
  ours = path.join(root, 'ours');
  const args = await resolveArgs('pretrain', {
    stage: '2',
    modelNameOrPath: TINY_LLAMA,
    tokenizerNameOrPath: ZH_TOKENIZER,
    datasetDir: zh,
    outputDir: ours,
    blockSize: '32',
    loraRank: '4',
    loraAlpha: '16',
    trainable: 'q_proj,v_proj,k_proj,o_proj',
    modulesToSave: 'embed_tokens,lm_head',
    perDeviceTrainBatchSize: '2',
    maxSteps: '2',
    learningRate: '1e-2',
    loggingSteps: '1',
    doEval: true,
    evalSteps: '1',
    saveSteps: '10',
    noProgress: true,
  });
  await runTrainingSession(args, { backend: 'wasm' });

  // the train.py / HF Trainer layout of the same weights
  hf = path.join(root, 'hf');
  const adapter = await readPeftAdapter(ours);
  await writeHfAdapter(hf, adapter);
  await fs.copyFile(path.join(ours, 'tokenizer.model'), path.join(hf, 'tokenizer.model'));
  await fs.writeFile(path.join(hf, 'trainer_state.json'), JSON.stringify(hfTrainerState(4), null, 2));
  await fs.writeFile(path.join(hf, 'all_results.json'), JSON.stringify({ epoch: 0.127, eval_loss: 9.35, perplexity: Math.exp(9.35), train_loss: 9.71 }));
  const ckpt = path.join(hf, 'checkpoint-2');
  await writeHfAdapter(ckpt, adapter);
  await fs.writeFile(path.join(ckpt, 'trainer_state.json'), JSON.stringify(hfTrainerState(2), null, 2));
  for (const pickle of ['optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'training_args.bin'])
    await fs.writeFile(path.join(ckpt, pickle), Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]));
  // metrics.jsonl as train.py's callback writes it (its own cllama_entry, run by python3 + numpy)
  const script = `
import json, sys
sys.path.insert(0, sys.argv[1])
import train
hist = json.loads(sys.argv[2])
entries = [train.cllama_entry(h, h['step'], h.get('epoch'), 1234.5 if 'loss' in h else None) for h in hist]
train.write_lines_atomic(sys.argv[3], [e for e in entries if e])
`;
  execFileSync(PYTHON, ['-B', '-c', script, TRAIN_PY_DIR, JSON.stringify(HF_LOG_HISTORY), path.join(hf, 'metrics.jsonl')]);
}, 300_000);
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('an output folder written by train.py (HF Trainer + peft layout)', () => {
  it('cllama-lora info reads it as the adapter it holds', async () => {
    const a = JSON.parse(await node(LORA_CLI, ['info', hf, '--json']));
    const b = JSON.parse(await node(LORA_CLI, ['info', ours, '--json']));
    expect(a).toMatchObject({ r: 4, loraAlpha: 16, loraPairs: 8, modulesToSave: ['embed_tokens', 'lm_head'] });
    for (const k of ['r', 'loraAlpha', 'scaling', 'adaptedModules', 'loraPairs', 'savedTensors', 'loraParameters', 'savedParameters', 'storedDtypes'])
      expect(a[k], k).toEqual(b[k]);
    expect(a.savedTensors['model.embed_tokens.weight']).toEqual([20000, 64]);
  });

  it('cllama-lora merge gives the same merged weights as from our own folder (top level and checkpoint-N)', async () => {
    await node(LORA_CLI, ['merge', '--base', TINY_LLAMA, '--lora', hf, '--out', path.join(root, 'm-hf'), '--quiet']);
    await node(LORA_CLI, ['merge', '--base', TINY_LLAMA, '--lora', path.join(hf, 'checkpoint-2'), '--out', path.join(root, 'm-ckpt'), '--quiet']);
    await node(LORA_CLI, ['merge', '--base', TINY_LLAMA, '--lora', ours, '--out', path.join(root, 'm-ours'), '--quiet']);
    const want = await fs.readFile(path.join(root, 'm-ours/model.safetensors'));
    expect((await fs.readFile(path.join(root, 'm-hf/model.safetensors'))).equals(want)).toBe(true);
    expect((await fs.readFile(path.join(root, 'm-ckpt/model.safetensors'))).equals(want)).toBe(true);
    expect(await fs.readdir(path.join(root, 'm-hf'))).toContain('tokenizer.model');
  });

  it('cllama-train score --lora gives exactly the loss of our own folder', async () => {
    const golden = JSON.parse(await fs.readFile(path.join(TINY_LLAMA, 'golden.json'), 'utf8'));
    const ids = path.join(root, 'ids.json');
    await fs.writeFile(ids, JSON.stringify(golden.input_ids));
    const score = async (lora: string) =>
      JSON.parse(await node(TRAIN_CLI, ['score', '--model', TINY_LLAMA, '--lora', lora, '--input-ids', ids, '--backend', 'wasm', '--json']));
    const [a, c, b] = [await score(hf), await score(path.join(hf, 'checkpoint-2')), await score(ours)];
    expect(Number.isFinite(a.loss)).toBe(true);
    expect(a.loss).toBe(b.loss);
    expect(c.loss).toBe(b.loss);
    expect(a.logits_sum).toBe(b.logits_sum);
  }, 180_000);

  it('metrics.jsonl from train.py has our keys, so the report and the plot read it', async () => {
    const mine = await readMetrics(path.join(ours, 'metrics.jsonl'));
    const theirs = await readMetrics(path.join(hf, 'metrics.jsonl'));
    const keys = (es: typeof mine, kind: string) => [...new Set(es.filter((e) => kind in e).map((e) => Object.keys(e).sort().join(',')))];
    expect(keys(theirs, 'loss')).toEqual(keys(mine, 'loss'));
    expect(keys(theirs, 'eval_loss')).toEqual(keys(mine, 'eval_loss'));
    expect(theirs.map((e) => [e.step, e.loss ?? e.eval_loss])).toEqual([
      [0, 10.02],
      [1, 10.03],
      [2, 9.81],
      [2, 9.7],
      [3, 9.6],
      [4, 9.41],
      [4, 9.35],
    ]);
    expect(theirs.find((e) => e.step === 4 && e.eval_loss !== undefined)!.eval_perplexity).toBeCloseTo(Math.exp(9.35), 2);
    const svg = renderTrainingPlot(theirs, { title: 'train.py', maxSteps: 4 });
    expect(svg).toContain('<svg');
    expect(svg).toContain('<path');
    // cllama-train plot draws the same chart into the folder (max_steps from HF's trainer_state.json)
    expect(await node(TRAIN_CLI, ['plot', hf, '--title', 'train.py'])).toContain('training_plot.svg');
    expect(await fs.readFile(path.join(hf, 'training_plot.svg'), 'utf8')).toBe(svg);
    const bad = await run('node', [TRAIN_CLI, 'plot', path.join(root, 'nowhere')]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(2); // a wrong folder argument: a usage error
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^cllama-train: cannot read .*metrics\.jsonl/);
  });
});
