/**
 * Issue 21, trainer classes: flags that would be ignored without a word (#13), SFT data that trains
 * nothing (#7), resume with a changed --lora-alpha or another base model (#12), and two runs into one
 * --output-dir (#4). Real CLI processes on the tiny fixture model.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PKG = path.resolve(__dirname, '..');
const FIX = path.resolve(PKG, '../../test-fixtures');
const CLI = path.join(PKG, 'dist/cli.js');
const TINY = path.join(FIX, 'tiny-llama');
const ZH_TOKENIZER = path.join(FIX, 'tokenizers/chinese_sp.model');
let root: string;
let textDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-round2-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  const lines = (await fs.readFile(path.join(FIX, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 80);
  await fs.writeFile(path.join(textDir, 'zh.txt'), lines.join('\n'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const exists = (p: string) =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: PKG, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
}

function pretrainFlags(outputDir: string, extra: string[] = []): string[] {
  return [
    'pretrain',
    '--backend',
    'wasm',
    '--model-name-or-path',
    TINY,
    '--tokenizer-name-or-path',
    ZH_TOKENIZER,
    '--dataset-dir',
    textDir,
    '--data-cache-dir',
    path.join(root, 'cache'),
    '--output-dir',
    outputDir,
    '--block-size',
    '32',
    '--per-device-train-batch-size',
    '4',
    '--validation-split-percentage',
    '0',
    '--logging-steps',
    '1',
    '--seed',
    '3',
    '--no-progress',
    ...extra,
  ];
}

describe('--peft-path where no adapter is trained is a usage error (#13)', () => {
  for (const [stage, message] of [
    [
      '1',
      /^cllama-train: --peft-path is for LoRA training \(pretrain --stage 2, sft\): --stage 1 trains embed_tokens only and would ignore the adapter; drop --peft-path, or use --stage 2$/,
    ],
    ['full', /^cllama-train: --peft-path is for LoRA training .*--stage full trains the base model's own weights/],
  ] as const) {
    it(`pretrain --stage ${stage} --peft-path: exit 2, one line, nothing created (training and --emit-launch)`, async () => {
      const out = path.join(root, `peft-stage-${stage}`);
      const emit = path.join(root, `peft-emit-${stage}`);
      for (const extra of [[], ['--emit-launch', emit]]) {
        const r = cli(pretrainFlags(out, ['--stage', stage, '--peft-path', path.join(TINY, 'lora'), ...extra]));
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr.trim()).toMatch(message);
        expect(r.stdout).toBe('');
      }
      expect(await exists(out)).toBe(false);
      expect(await exists(emit)).toBe(false);
    });
  }
});
