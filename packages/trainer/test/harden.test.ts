/**
 * Bad flags, bad paths and non-finite numbers in training (issue #14): every flag is validated and every
 * input path checked before --output-dir is created; a NaN/Inf loss, gradient norm or weight stops the
 * run (single thread and data parallel) with the last good checkpoint kept and nothing non-finite saved.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HFCheckpoint, SafetensorsFile, readPeftAdapter, saveHFCheckpoint, writePeftAdapter, type NamedTensor } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { NonFiniteError } from '../src/train/loop.js';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';

const PKG = path.resolve(__dirname, '..');
const FIX = path.resolve(PKG, '../../test-fixtures');
const TINY = path.join(FIX, 'tiny-llama');
const ZH_TOKENIZER = path.join(FIX, 'tokenizers/chinese_sp.model');
let root: string;
let textDir: string;
let cache: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-harden-'));
  textDir = path.join(root, 'text');
  cache = path.join(root, 'cache');
  await fs.mkdir(textDir);
  const lines = (await fs.readFile(path.join(FIX, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 80);
  await fs.writeFile(path.join(textDir, 'zh.txt'), lines.join('\n'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const base = (outputDir: string, extra: Record<string, unknown> = {}) => ({
  modelNameOrPath: TINY,
  tokenizerNameOrPath: ZH_TOKENIZER,
  datasetDir: textDir,
  dataCacheDir: cache,
  outputDir,
  blockSize: '32',
  perDeviceTrainBatchSize: '4',
  validationSplitPercentage: '0',
  seed: '3',
  noProgress: true,
  ...extra,
});
const exists = (p: string) =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

describe('flags are validated before anything is created', () => {
  for (const [flag, value, message] of [
    ['warmupRatio', '2', /--warmup-ratio must be in \[0, 1\], got 2/],
    ['adamBeta1', '1.5', /--adam-beta1 must be in \[0, 1\), got 1.5/],
    ['adamBeta2', '-0.1', /--adam-beta2 must be in \[0, 1\)/],
    ['warmupSteps', '-3', /--warmup-steps must be >= 0, got -3/],
    ['adamEpsilon', '0', /--adam-epsilon must be > 0/],
    ['trainable', 'foo', /--trainable: 'foo' is not a LoRA target of LLaMA; choose from q_proj,/],
    ['modulesToSave', 'norm', /--modules-to-save: 'norm' is not supported/],
    ['seed', 'abc', /flag seed: expected an integer, got "abc"/],
    ['seed', '1e99', /flag seed: expected an integer, got "1e99"/],
    ['seed', '', /flag seed: expected an integer, got ""/],
    ['maxSteps', '1e3', /flag max-steps: expected an integer, got "1e3"/],
    ['learningRate', ' ', /flag learning-rate: expected a number/],
    ['loraAlpha', '0', /--lora-alpha must be > 0/],
  ] as const) {
    it(`--${flag} ${JSON.stringify(value)}`, async () => {
      await expect(resolveArgs('pretrain', base(path.join(root, 'never'), { stage: '2', [flag]: value }))).rejects.toThrow(message);
    });
  }

  it('the CLI refuses --warmup-ratio 2 in one line and creates no --output-dir', () => {
    const out = path.join(root, 'cli-never');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(PKG, 'src/cli.ts'),
        'pretrain',
        '--model-name-or-path',
        TINY,
        '--tokenizer-name-or-path',
        ZH_TOKENIZER,
        '--dataset-dir',
        textDir,
        '--output-dir',
        out,
        '--warmup-ratio',
        '2',
      ],
      { cwd: PKG, encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--warmup-ratio must be in \[0, 1\], got 2/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    return exists(out).then((e) => expect(e).toBe(false));
  });
});

describe('input paths are checked before --output-dir is created', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a missing model', { modelNameOrPath: '/nonexistent/model' }, /--model-name-or-path \/nonexistent\/model: no config\.json there/],
    ['a missing tokenizer', { tokenizerNameOrPath: '/nonexistent/tok.model' }, /--tokenizer-name-or-path \/nonexistent\/tok\.model does not exist/],
    ['a missing dataset dir', { datasetDir: '/nonexistent/data' }, /--dataset-dir \/nonexistent\/data cannot be read/],
    ['a missing adapter', { stage: '2', peftPath: '/nonexistent/adapter' }, /--peft-path \/nonexistent\/adapter: no adapter_config\.json/],
    [
      'a missing checkpoint',
      { resumeFromCheckpoint: '/nonexistent/checkpoint-5' },
      /--resume-from-checkpoint \/nonexistent\/checkpoint-5: no trainer_state\.json/,
    ],
  ];
  for (const [what, extra, message] of cases) {
    it(what, async () => {
      const out = path.join(root, `never-${what.replace(/ /g, '-')}`);
      const args = await resolveArgs('pretrain', base(out, { maxSteps: '1', dataCacheDir: undefined, ...extra }));
      await expect(runTrainingSession(args, { backend: 'wasm' })).rejects.toThrow(message);
      expect(await exists(out)).toBe(false);
    });
  }

  it('an --output-dir that is an input folder is refused, even with --overwrite-output-dir', async () => {
    const copy = path.join(root, 'model-copy');
    await fs.cp(TINY, copy, { recursive: true });
    const before = (await fs.readdir(copy)).sort();
    const args = await resolveArgs('pretrain', base(copy, { maxSteps: '1', modelNameOrPath: copy, overwriteOutputDir: true }));
    await expect(runTrainingSession(args, { backend: 'wasm' })).rejects.toThrow(/--output-dir .*model-copy is the --model-name-or-path folder/);
    expect((await fs.readdir(copy)).sort()).toEqual(before);
    const args2 = await resolveArgs('pretrain', base(textDir, { maxSteps: '1', overwriteOutputDir: true }));
    await expect(runTrainingSession(args2, { backend: 'wasm' })).rejects.toThrow(/is the --dataset-dir folder/);
  });

  it('data that tokenizes to nothing leaves no output dir (and no cache in it) behind', async () => {
    const empty = path.join(root, 'short-text');
    await fs.mkdir(empty);
    await fs.writeFile(path.join(empty, 'a.txt'), '短\n');
    const out = path.join(root, 'never-short');
    const args = await resolveArgs('pretrain', base(out, { datasetDir: empty, dataCacheDir: undefined, maxSteps: '1' }));
    await expect(runTrainingSession(args, { backend: 'wasm' })).rejects.toThrow(/gives no complete block of 32 tokens/);
    expect(await exists(out)).toBe(false);
  });
});

/** Every value of every tensor in a safetensors file is finite. */
async function allFinite(file: string): Promise<boolean> {
  const f = await SafetensorsFile.open(file);
  try {
    for (const n of f.names()) for (const v of await f.read(n)) if (!Number.isFinite(v)) return false;
    return true;
  } finally {
    await f.close();
  }
}

describe('non-finite numbers stop training; the last good checkpoint is kept', () => {
  for (const threads of [1, 2]) {
    it(`--learning-rate 1e99 (threads ${threads}): stops at the first non-finite weight, checkpoint-1 kept, nothing NaN saved`, async () => {
      const out = path.join(root, `lr-${threads}`);
      // warmup: step 1 runs at lr 0 (a good checkpoint), step 2 at 5e98 (every updated weight overflows)
      const args = await resolveArgs(
        'pretrain',
        base(out, { stage: '1', maxSteps: '4', learningRate: '1e99', warmupSteps: '2', saveSteps: '1', loggingSteps: '1', threads: String(threads) }),
      );
      const err = await runTrainingSession(args, { backend: 'wasm' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NonFiniteError);
      expect((err as Error).message).toMatch(
        /(after step 2 the weight 'model\.embed_tokens\.weight' holds NaN or Inf .*refusing to save checkpoint-2|step 3: the training loss is NaN).*the last good checkpoint, .*checkpoint-1, is kept/,
      );
      const files = await fs.readdir(out);
      expect(files.filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-1']);
      expect(files).not.toContain('model.safetensors');
      expect(await allFinite(path.join(out, 'checkpoint-1/trainable.safetensors'))).toBe(true);
    }, 60_000);
  }

  it('a NaN in a frozen base weight: the loss of step 1 is NaN, nothing is trained or saved', async () => {
    const nanBase = path.join(root, 'nan-base');
    const ck = await HFCheckpoint.open(TINY);
    const tensors: NamedTensor[] = [];
    for (const name of ck.names()) {
      const data = await ck.read(name);
      if (name === 'model.norm.weight') data[5] = Number.NaN;
      tensors.push({ name, shape: ck.info(name).shape, data });
    }
    await saveHFCheckpoint(nanBase, ck.config, tensors);
    await ck.close();
    const out = path.join(root, 'nan-base-out');
    const args = await resolveArgs('pretrain', base(out, { modelNameOrPath: nanBase, stage: '1', maxSteps: '2', saveSteps: '1' }));
    await expect(runTrainingSession(args, { backend: 'wasm' })).rejects.toThrow(
      /step 1: the training loss is NaN .*stopped before the update; no checkpoint was saved/,
    );
    expect((await fs.readdir(out)).filter((f) => f.startsWith('checkpoint-') || f.endsWith('.safetensors'))).toEqual([]);
  }, 60_000);

  it('a NaN in the --peft-path adapter is refused before the first step', async () => {
    const { config, tensors } = await readPeftAdapter(path.join(TINY, 'lora'));
    const key = [...tensors.keys()].find((k) => k.includes('lora_A'))!;
    tensors.get(key)!.data[0] = Number.NaN;
    const adapter = path.join(root, 'nan-adapter');
    await writePeftAdapter(adapter, config, tensors);
    const out = path.join(root, 'nan-adapter-out');
    const args = await resolveArgs('pretrain', base(out, { stage: '2', peftPath: adapter, maxSteps: '2', saveSteps: '1' }));
    await expect(runTrainingSession(args, { backend: 'wasm' })).rejects.toThrow(
      /the starting weight '.*lora_A.*' holds NaN or Inf \(the model or --peft-path adapter is broken\); nothing was trained or saved/,
    );
    expect((await fs.readdir(out)).filter((f) => f.startsWith('checkpoint-') || f.startsWith('adapter_'))).toEqual([]);
  }, 60_000);
});
