/**
 * Crash safety end to end: the CLI is killed with SIGKILL after it wrote a checkpoint, then started
 * again with the same flags; it resumes from the latest checkpoint and produces exactly the per-step
 * losses of an uninterrupted run with the same seed. Every checkpoint folder that exists at any point
 * is complete.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SafetensorsFile, readPeftAdapter } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/train/metrics.js';

const PKG = path.resolve(__dirname, '..');
const FIX = path.resolve(PKG, '../../test-fixtures');
const CLI = path.join(PKG, 'src/cli.ts');
let root: string;
let textDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-resume-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  await fs.copyFile(path.join(FIX, 'train/zh_text.txt'), path.join(textDir, 'zh_text.txt'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function flags(outputDir: string): string[] {
  return [
    'pretrain',
    '--stage',
    '2',
    '--backend',
    'wasm',
    '--model-name-or-path',
    path.join(FIX, 'tiny-llama'),
    '--tokenizer-name-or-path',
    path.join(FIX, 'tokenizers/chinese_sp.model'),
    '--dataset-dir',
    textDir,
    '--data-cache-dir',
    path.join(root, 'cache'),
    '--output-dir',
    outputDir,
    '--block-size',
    '32',
    '--per-device-train-batch-size',
    '2',
    '--gradient-accumulation-steps',
    '2',
    '--max-steps',
    '12',
    '--save-steps',
    '2',
    '--save-total-limit',
    '2',
    '--logging-steps',
    '1',
    '--learning-rate',
    '3e-3',
    '--lr-scheduler-type',
    'cosine',
    '--warmup-steps',
    '2',
    '--weight-decay',
    '0.01',
    '--lora-rank',
    '4',
    '--lora-alpha',
    '16',
    '--lora-dropout',
    '0.1',
    '--trainable',
    'q_proj,v_proj',
    '--modules-to-save',
    'embed_tokens,lm_head',
    '--validation-split-percentage',
    '0',
    '--seed',
    '5',
    '--no-progress',
  ];
}

function startCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: PKG, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done, output: () => output };
}

/** Every checkpoint-N folder must hold a readable adapter, optimizer state and trainer state. */
async function assertCheckpointsComplete(outputDir: string): Promise<number[]> {
  const steps: number[] = [];
  for (const name of await fs.readdir(outputDir)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (!m) continue;
    const dir = path.join(outputDir, name);
    const state = JSON.parse(await fs.readFile(path.join(dir, 'trainer_state.json'), 'utf8'));
    expect(state.globalStep).toBe(Number(m[1]));
    const adapter = await readPeftAdapter(dir);
    expect(adapter.tensors.size).toBeGreaterThan(0);
    const opt = await SafetensorsFile.open(path.join(dir, 'optimizer.safetensors'));
    expect(opt.names().length).toBe(2 * adapter.tensors.size);
    await opt.close();
    steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

describe('SIGKILL mid-run, then resume', () => {
  it('gives the same per-step losses as an uninterrupted run and never a half checkpoint', async () => {
    const straight = path.join(root, 'straight');
    const full = startCli(flags(straight));
    expect(await full.done, full.output()).toBe(0);
    const reference = (await readMetrics(path.join(straight, 'metrics.jsonl'))).filter((e) => e.loss !== undefined);
    expect(reference.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

    const killed = path.join(root, 'killed');
    const run = startCli(flags(killed));
    // wait until checkpoint-4 exists, then kill without warning as soon as the write of checkpoint-6
    // has begun (its temporary folder appears) — or has finished, if it was too quick to be caught
    const deadline = Date.now() + 90_000;
    const writingSix = () => existsSync(path.join(killed, 'checkpoint-6')) || readdirSync(killed).some((n) => n.startsWith('.checkpoint-6.'));
    while (!existsSync(path.join(killed, 'checkpoint-4')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    while (!writingSix() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const caughtMidWrite = !existsSync(path.join(killed, 'checkpoint-6'));
    run.child.kill('SIGKILL');
    await run.done;
    console.log(
      `killed ${caughtMidWrite ? 'while checkpoint-6 was being written' : 'after checkpoint-6 was written'}; left: ${readdirSync(killed).join(', ')}`,
    );
    const survivors = await assertCheckpointsComplete(killed);
    expect(survivors.length).toBeGreaterThan(0);
    expect(Math.max(...survivors)).toBeLessThan(12);

    const resumed = startCli(flags(killed));
    expect(await resumed.done, resumed.output()).toBe(0);
    expect(resumed.output()).toMatch(/resumed_from: .*checkpoint-\d+/);
    const after = (await readMetrics(path.join(killed, 'metrics.jsonl'))).filter((e) => e.loss !== undefined);
    expect(after.map((e) => e.step)).toEqual(reference.map((e) => e.step));
    for (let i = 0; i < reference.length; i++) expect(after[i]!.loss, `step ${i + 1}`).toBe(reference[i]!.loss);
    // the final adapters are identical too
    const a = await readPeftAdapter(straight);
    const b = await readPeftAdapter(killed);
    for (const [k, t] of a.tensors) {
      const other = b.tensors.get(k)!.data;
      let differing = 0;
      for (let i = 0; i < t.data.length; i++) if (!Object.is(t.data[i], other[i])) differing++;
      expect(differing, k).toBe(0);
    }
    expect(await assertCheckpointsComplete(killed)).toEqual([10, 12]);
    expect((await fs.readdir(killed)).filter((n) => n.startsWith('.'))).toEqual([]);
  }, 300_000);
});
