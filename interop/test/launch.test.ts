/**
 * The `--emit-launch` folder, for real: the fixture recipe's stage-2 and SFT runs emitted by
 * cllama-train and run by `bash launch.sh --nproc_per_node 2` under torchrun on this CPU (DDP over gloo,
 * transformers Trainer + PEFT from the interop venv).
 *
 * The fixture recipe: LLaMA's tokenizer merged with the zh model (+ pad: 49,954 pieces), the tiny-llama
 * fixture (512 rows, so the run starts with a resize), 120 zh documents in blocks of 64 (stage 2:
 * LoRA on the attention projections + embed_tokens/lm_head), then 48 Alpaca-zh records (SFT continuing
 * the adapter train.py wrote). LoRA dropout 0, so the first step is deterministic on both sides.
 *
 *   - the folders are emitted from one directory with relative paths and launched from another;
 *   - the log says 2 processes, DDP, and never "parallel_mode != ParallelMode.DISTRIBUTED";
 *   - PyTorch's first-step loss = cllama-train's first-step loss on the same records (per-device batch
 *     2 x 2 processes = our batch of 4, in our epoch order) within 1e-4: the same starting weights
 *     (our resized rows included) and really data-parallel (one rank alone would see 2 records);
 *   - the loss falls; the outputs come back: `cllama-lora info`, `cllama-lora merge` and
 *     `cllama-train score --lora` take them, and give PyTorch's scores within 1e-4;
 *   - a run resumed from train.py's checkpoint-2 logs the uninterrupted run's losses for steps 3-4.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { HFCheckpoint, readPeftAdapter } from '@cllama/lora';
import { resizedEmbeddingRows } from '@cllama/trainer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, assertReady, cliOk, oracle, pythonEnv, relativeError, report } from './helpers.js';

const exec = promisify(execFile);
const TOL = 1e-4;
let root: string;
const p = (...parts: string[]) => path.join(root, ...parts);

interface Metric {
  step: number;
  loss?: number;
  eval_loss?: number;
}

async function metrics(dir: string): Promise<Metric[]> {
  return (await fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Metric);
}
const trainLoss = (m: Metric[], step: number) => m.find((e) => e.step === step && e.loss !== undefined)!.loss!;

/** bash launch.sh from "/" (the recorded paths must be absolute), 2 processes; returns the log. */
async function launch(folder: string, env: Record<string, string> = {}, extra: string[] = []): Promise<string> {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  try {
    const { stdout, stderr } = await exec(
      'bash',
      [path.join(folder, 'launch.sh'), '--nproc_per_node', '2', '--master_port', port, '--disable_tqdm', 'true', ...extra],
      {
        cwd: '/',
        env: pythonEnv(env),
        maxBuffer: 1 << 26,
      },
    );
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    throw new Error(`launch.sh in ${folder} exited ${e.code}:\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').slice(-30).join('\n')}`);
  }
}

/** logging, checkpoints and seed shared by both phases */
const LOGGING = ['--logging-steps', '1', '--logging-first-step', '--save-steps', '2', '--seed', '42'];
const STAGE2 = [
  'pretrain',
  '--stage',
  '2',
  '--model-name-or-path',
  path.join(FIXTURES, 'tiny-llama'),
  '--tokenizer-name-or-path',
  'tok',
  '--dataset-dir',
  'zh',
  '--block-size',
  '64',
  '--validation-split-percentage',
  '5',
  '--lora-rank',
  '8',
  '--lora-alpha',
  '32',
  '--lora-dropout',
  '0',
  '--trainable',
  'q_proj,k_proj,v_proj,o_proj',
  '--modules-to-save',
  'embed_tokens,lm_head',
  '--learning-rate',
  '2e-3',
  '--lr-scheduler-type',
  'cosine',
  ...LOGGING,
  '--do-eval',
  '--eval-steps',
  '2',
];
const SFT = [
  'sft',
  '--model-name-or-path',
  path.join(FIXTURES, 'tiny-llama'),
  '--tokenizer-name-or-path',
  'tok',
  '--dataset-dir',
  'sft',
  '--max-seq-length',
  '128',
  '--validation-split-percentage',
  '10',
  '--learning-rate',
  '2e-3',
  ...LOGGING,
  '--lora-dropout',
  '0',
];
const ours = ['--backend', 'wasm', '--threads', '1', '--per-device-train-batch-size', '4', '--max-steps', '1'];

const logs: Record<string, string> = {};

beforeAll(async () => {
  assertReady();
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-interop-launch-'));
  await cliOk('tokenizer', [
    'merge',
    '--base',
    path.join(FIXTURES, 'tokenizers/llama_tokenizer.model'),
    '--add',
    path.join(FIXTURES, 'tokenizers/chinese_sp.model'),
    '--out',
    p('tok'),
    '--distinct-scores',
  ]);
  await fs.mkdir(p('zh'));
  const zh = (await fs.readFile(path.join(FIXTURES, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 120).join('\n');
  await fs.writeFile(p('zh', 'zh.txt'), `${zh}\n`);
  await fs.mkdir(p('sft'));
  await fs.writeFile(
    p('sft', 'train.json'),
    JSON.stringify(JSON.parse(await fs.readFile(path.join(FIXTURES, 'data/alpaca_zh_demo.json'), 'utf8')).slice(0, 48)),
  );

  // stage 2: emitted with relative paths from root, run from "/"; ours: one step of the same batch
  await cliOk('train', [...STAGE2, '--per-device-train-batch-size', '2', '--max-steps', '4', '--output-dir', 'out-s2', '--emit-launch', 'stage 2 launch'], {
    cwd: root,
  });
  logs.s2 = await launch(p('stage 2 launch'));
  await cliOk('train', [...STAGE2, ...ours, '--output-dir', 'ours-s2'], { cwd: root });
  // resume: only checkpoint-2 of the run above, in a fresh output folder
  cpSync(p('out-s2/checkpoint-2'), p('out-s2-resumed/checkpoint-2'), { recursive: true });
  logs.resume = await launch(p('stage 2 launch'), { OUTPUT_DIR: p('out-s2-resumed') });
  // SFT continuing the adapter train.py wrote
  await cliOk(
    'train',
    [...SFT, '--per-device-train-batch-size', '2', '--max-steps', '3', '--peft-path', 'out-s2', '--output-dir', 'out-sft', '--emit-launch', 'sft-launch'],
    {
      cwd: root,
    },
  );
  logs.sft = await launch(p('sft-launch'));
  await cliOk('train', [...SFT, ...ours, '--peft-path', 'out-s2', '--output-dir', 'ours-sft'], { cwd: root });
});

afterAll(async () => {
  if (root && !process.env.KEEP) await fs.rm(root, { recursive: true, force: true });
});

describe('--emit-launch folders under torchrun, 2 CPU processes', () => {
  for (const [name, log, out, mine] of [
    ['stage 2', () => logs.s2!, () => p('out-s2'), () => p('ours-s2')],
    ['SFT (continuing the stage-2 adapter train.py wrote)', () => logs.sft!, () => p('out-sft'), () => p('ours-sft')],
  ] as const) {
    it(`${name}: DDP over 2 processes, our starting weights and batch (first-step loss), the loss falls`, async () => {
      expect(log()).toMatch(/launch\.sh: 1 node\(s\) x 2 process\(es\)/);
      expect(log()).toMatch(/\[train\.py\] .* 2 process\(es\), transformers 5\.18\.0, torch 2\.13\.0/);
      expect(log()).toMatch(/torchrun DDP over 2 processes/);
      expect(log()).not.toMatch(/parallel_mode != ParallelMode\.DISTRIBUTED/);
      // --disable_tqdm true reaches TrainingArguments (no step bar), and transformers 5 is not told about save_safetensors
      expect(log()).not.toMatch(/\d+\/[34] \[/);
      expect(log()).not.toMatch(/no TrainingArguments save_safetensors/);
      expect(log()).toMatch(
        name === 'stage 2' ? /resizing the token embeddings 512 -> 49954 \(cllama's seeded mean-resizing, seed 42\)/ : /continuing the adapter/,
      );
      const torch = await metrics(out());
      const cllama = await metrics(mine());
      const rel = relativeError(trainLoss(torch, 1), trainLoss(cllama, 1));
      const steps = torch.filter((m) => m.loss !== undefined);
      report(`${name}: first-step loss`, { pytorch: trainLoss(torch, 1), cllama: trainLoss(cllama, 1), rel, last: steps.at(-1)!.loss! });
      expect(rel).toBeLessThan(TOL);
      expect(steps.at(-1)!.loss!).toBeLessThan(steps[0]!.loss!);
      const evals = torch.filter((m) => m.eval_loss !== undefined);
      if (evals.length > 1) expect(evals.at(-1)!.eval_loss!).toBeLessThan(evals[0]!.eval_loss!);
    });
  }

  it('stage 2 started from our resized rows: embed_tokens rows of ids the data never holds are still exactly ours', async () => {
    // a row whose token never occurs gets no gradient, and AdamW (no weight decay) leaves it as it started
    const meta = JSON.parse(await fs.readFile(p('stage 2 launch/data/meta.json'), 'utf8'));
    const seen = new Set<number>();
    for (const split of ['train', 'eval']) {
      const flat = new Int32Array((await fs.readFile(p('stage 2 launch/data', meta.splits[split].files.input_ids))).buffer.slice(0));
      for (const id of flat) seen.add(id);
    }
    const base = await HFCheckpoint.open(path.join(FIXTURES, 'tiny-llama'));
    const old = await base.read('model.embed_tokens.weight');
    await base.close();
    const ours = resizedEmbeddingRows(old, 512, 64, 49954, 42); // cllama-train: embed_tokens with --seed, lm_head with --seed + 1
    const { tensors } = await readPeftAdapter(p('out-s2'));
    const trained = tensors.get('base_model.model.model.embed_tokens.weight')!;
    expect(trained.shape).toEqual([49954, 64]);
    let checked = 0;
    let maxDiff = 0;
    for (let id = 512; id < 49954; id++) {
      if (seen.has(id)) continue;
      checked++;
      for (let j = 0; j < 64; j++) maxDiff = Math.max(maxDiff, Math.abs(trained.data[id * 64 + j]! - ours[id * 64 + j]!));
    }
    report('stage 2: untouched resized rows vs ours', { rows: checked, max_abs_diff: maxDiff });
    expect(checked).toBeGreaterThan(40000);
    expect(maxDiff).toBe(0);
  });

  it('the outputs come back: info, merge and score --lora give PyTorch scores (1e-4)', async () => {
    // eval blocks of the stage-2 export: what both sides score
    const dir = p('stage 2 launch/data');
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8'));
    const flat = new Int32Array((await fs.readFile(path.join(dir, meta.splits.eval.files.input_ids))).buffer.slice(0));
    const ids = Array.from({ length: meta.splits.eval.count }, (_, i) => Array.from(flat.subarray(i * 64, (i + 1) * 64))).slice(0, 4);
    await fs.writeFile(p('score_ids.json'), JSON.stringify(ids));
    const base = path.join(FIXTURES, 'tiny-llama');
    const jobs: Array<Record<string, unknown>> = [];
    for (const out of ['out-s2', 'out-sft']) {
      const info = JSON.parse(await cliOk('lora', ['info', p(out), '--json']));
      expect(info).toMatchObject({ r: 8, loraAlpha: 32, modulesToSave: ['embed_tokens', 'lm_head'] });
      expect(Object.keys(info.savedTensors).sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
      expect(info.savedTensors['lm_head.weight']).toEqual([49954, 64]);
      // the checkpoints hold the same layout (no frozen base layers beside modules_to_save)
      const ckpt = JSON.parse(await cliOk('lora', ['info', p(out, 'checkpoint-2'), '--json']));
      expect(ckpt.loraPairs).toBe(info.loraPairs);
      expect(Object.keys(ckpt.savedTensors).sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
      await cliOk('lora', ['merge', '--base', base, '--lora', p(out), '--tokenizer', p('tok'), '--out', p(`${out}-merged`)]);
      jobs.push({ op: 'forward', model: base, adapter: p(out), resize: 49954, ids, labels: ids });
      jobs.push({ op: 'forward', model: p(`${out}-merged`), ids, labels: ids });
    }
    const py = await oracle<{ loss: number }>(root, jobs);
    for (const [i, out] of ['out-s2', 'out-sft'].entries()) {
      const torchLoss = py.results[2 * i]!.loss;
      const scored = JSON.parse(
        await cliOk('train', ['score', '--model', base, '--lora', p(out), '--input-ids', p('score_ids.json'), '--json', '--backend', 'wasm']),
      );
      const merged = JSON.parse(
        await cliOk('train', ['score', '--model', p(`${out}-merged`), '--input-ids', p('score_ids.json'), '--json', '--backend', 'wasm']),
      );
      const figures = {
        pytorch: torchLoss,
        score_lora_rel: relativeError(scored.loss, torchLoss),
        merged_ours_rel: relativeError(merged.loss, torchLoss),
        merged_transformers_rel: relativeError(py.results[2 * i + 1]!.loss, torchLoss),
      };
      report(`${out}: scores`, figures);
      expect(figures.score_lora_rel).toBeLessThan(TOL);
      expect(figures.merged_ours_rel).toBeLessThan(TOL);
      expect(figures.merged_transformers_rel).toBeLessThan(TOL);
    }
    // the output folders are what cllama-train writes: the tokenizer and HF's trainer_state.json beside the adapter
    for (const f of ['tokenizer.model', 'tokenizer.json', 'trainer_state.json', 'metrics.jsonl']) expect(existsSync(p('out-sft', f)), f).toBe(true);
  });

  it("a run resumed from train.py's checkpoint-2 logs the uninterrupted run's steps 3-4", async () => {
    expect(logs.resume).toMatch(/resuming from .*out-s2-resumed\/checkpoint-2/);
    const whole = await metrics(p('out-s2'));
    const resumed = await metrics(p('out-s2-resumed'));
    for (const step of [3, 4]) {
      const rel = relativeError(trainLoss(resumed, step), trainLoss(whole, step));
      report(`resumed step ${step}`, { whole: trainLoss(whole, step), resumed: trainLoss(resumed, step), rel });
      expect(rel).toBeLessThan(TOL);
    }
    expect(resumed.filter((m) => m.loss !== undefined).map((m) => m.step)).toEqual([1, 2, 3, 4]); // history carried from the checkpoint
  });
});
