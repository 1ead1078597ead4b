/**
 * A full disk under every output of a training run (issue 21 #14): metrics.jsonl, checkpoint-N/,
 * training_plot.svg, the final adapter + tokenizer, the tokenized cache. The output dir (or the cache)
 * lives on a small tmpfs mounted for the test by core's `withTmpfs` (root, as in CI; it fails loudly
 * elsewhere unless CLLAMA_SKIP_TMPFS_TESTS=1); the run fills the disk from its onStep hook so that
 * exactly the output under test is the next write. Each time: one line naming the file,
 * exit code 1 (a CllamaError), nothing torn (metrics lines whole, checkpoints complete, no hidden
 * temporaries, the previous plot and checkpoint intact), and the same command finishes once space is back.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CllamaError, errorLine } from '@cllama/core';
import { SafetensorsFile, readPeftAdapter } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipTmpfsTests, withTmpfs } from '../../core/test/helpers/disk-full.js';
import { initBackend } from '../src/backend.js';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';
import { errorLines, exists, tinyTrainFlags } from './helpers.js';

const PKG = path.resolve(__dirname, '..');
const FIX = path.resolve(PKG, '../../test-fixtures');
const CLI = path.join(PKG, 'dist/cli.js');
const ENOSPC = 'no space left on device (ENOSPC)';
let root: string;
let textDir: string;
/** The current test's tmpfs (see `onDisk`). */
let disk: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-diskfull-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  const lines = (await fs.readFile(path.join(FIX, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 80);
  await fs.writeFile(path.join(textDir, 'zh.txt'), lines.join('\n'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Runs `fn` with `disk` on a fresh 4 MiB tmpfs, unmounted afterwards. */
function onDisk(fn: () => Promise<void>): Promise<void> {
  return withTmpfs(4096, async (dir) => {
    disk = dir;
    await fn();
  });
}

const pageSize = async () => (await fs.statfs(disk)).bsize;

/** Fills the tmpfs so that only `leave` bytes stay free (a page multiple). */
async function fillLeaving(leave: number): Promise<void> {
  const st = await fs.statfs(disk);
  const free = st.bavail * st.bsize;
  if (free > leave) await fs.writeFile(path.join(disk, `filler-${Date.now()}`), Buffer.alloc(free - leave));
}
async function freeSpace(): Promise<void> {
  for (const name of await fs.readdir(disk)) if (name.startsWith('filler-')) await fs.rm(path.join(disk, name));
}
/** Bytes the files under `p` take on the tmpfs (whole pages). */
async function pagesOf(p: string): Promise<number> {
  const page = await pageSize();
  const st = await fs.stat(p);
  if (!st.isDirectory()) return Math.ceil(st.size / page) * page;
  let sum = 0;
  for (const name of await fs.readdir(p)) sum += await pagesOf(path.join(p, name));
  return sum;
}

function args(out: string, extra: Record<string, unknown>) {
  return resolveArgs('pretrain', {
    stage: '2',
    modelNameOrPath: path.join(FIX, 'tiny-llama'),
    tokenizerNameOrPath: path.join(FIX, 'tokenizers/chinese_sp.model'),
    datasetDir: textDir,
    dataCacheDir: path.join(root, 'cache'),
    outputDir: out,
    blockSize: '32',
    perDeviceTrainBatchSize: '4',
    validationSplitPercentage: '0',
    loraRank: '4',
    trainable: 'q_proj,v_proj',
    modulesToSave: '',
    learningRate: '1e-3',
    seed: '3',
    noProgress: true,
    ...extra,
  });
}

/** Runs a session that fills the disk after step `at` (leaving `leave(out)` bytes); returns the error it ends with. */
async function failingRun(out: string, extra: Record<string, unknown>, at: number, leave: () => Promise<number> = async () => 0): Promise<Error> {
  const err = await runTrainingSession(await args(out, extra), {
    backend: 'wasm',
    onStep: async ({ step }) => {
      if (step === at) await fillLeaving(await leave());
    },
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err, 'the run should have failed on the full disk').toBeInstanceOf(CllamaError);
  expect((err as CllamaError).exitCode).toBe(1);
  expect(errorLine(err).split('\n')).toHaveLength(1);
  return err!;
}

/** No hidden temporaries of atomic writes left anywhere under the output dir. */
async function assertNoTemporaries(out: string): Promise<void> {
  const all = await fs.readdir(out, { recursive: true });
  expect(all.filter((n) => path.basename(String(n)).startsWith('.'))).toEqual([]);
}

async function assertCheckpointComplete(dir: string, step: number): Promise<void> {
  const state = JSON.parse(await fs.readFile(path.join(dir, 'trainer_state.json'), 'utf8'));
  expect(state.globalStep).toBe(step);
  const adapter = await readPeftAdapter(dir);
  const opt = await SafetensorsFile.open(path.join(dir, 'optimizer.safetensors'));
  expect(opt.names()).toHaveLength(2 * adapter.tensors.size);
  await opt.close();
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a full disk under the trainer outputs (tmpfs)', () => {
  it.skipIf(skipTmpfsTests)(
    'metrics.jsonl: the line that does not fit is cut back whole; one line naming the file; the run starts again once space is back',
    () =>
      onDisk(async () => {
        const out = path.join(disk, 'metrics');
        const err = await failingRun(out, { maxSteps: '40', saveSteps: '100', loggingSteps: '1' }, 1);
        expect(err.message).toBe(
          `cannot write ${path.join(out, 'metrics.jsonl')}: ${ENOSPC}; no checkpoint was saved: free space and run the same command again`,
        );
        const text = await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8');
        expect(text.endsWith('\n')).toBe(true);
        const steps = text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).step);
        expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
        expect(steps.length).toBeGreaterThan(5); // it failed where a line crossed into a page the disk did not have
        expect(steps.length).toBeLessThan(40);
        await assertNoTemporaries(out);
        await freeSpace();
        const again = await runTrainingSession(await args(out, { maxSteps: '40', saveSteps: '100', loggingSteps: '1' }), { backend: 'wasm' });
        expect(again.globalStep).toBe(40);
      }),
  );

  it.skipIf(skipTmpfsTests)('checkpoint-N: refused whole, the previous checkpoint intact, resumed from it once space is back', () =>
    onDisk(async () => {
      const out = path.join(disk, 'checkpoint');
      const flags = { maxSteps: '6', saveSteps: '2', loggingSteps: '100' };
      const err = await failingRun(out, flags, 3);
      expect(err.message).toMatch(
        new RegExp(
          `^cannot write ${escapeRe(path.join(out, 'checkpoint-4'))}(/[\\w.]+)?: ${escapeRe(ENOSPC)}; the last good checkpoint, ${escapeRe(path.join(out, 'checkpoint-2'))}, is kept: free space and run the same command again to resume from it$`,
        ),
      );
      expect((await fs.readdir(out)).filter((n) => n.startsWith('checkpoint-'))).toEqual(['checkpoint-2']);
      await assertCheckpointComplete(path.join(out, 'checkpoint-2'), 2);
      await assertNoTemporaries(out);
      await freeSpace();
      const resumed = await runTrainingSession(await args(out, flags), { backend: 'wasm' });
      expect(resumed.resumedFrom).toBe(path.join(out, 'checkpoint-2'));
      expect(resumed.globalStep).toBe(6);
      await assertCheckpointComplete(path.join(out, 'checkpoint-6'), 6);
    }),
  );

  it.skipIf(skipTmpfsTests)('training_plot.svg: the new checkpoint fits, the plot does not; the previous plot is kept whole', () =>
    onDisk(async () => {
      const out = path.join(disk, 'plot');
      const flags = { maxSteps: '6', saveSteps: '2', loggingSteps: '100' };
      // after checkpoint-2 and its plot, leave exactly the room another checkpoint of the same size takes
      const err = await failingRun(out, flags, 2, () => pagesOf(path.join(out, 'checkpoint-2')));
      expect(err.message).toBe(
        `cannot write ${path.join(out, 'training_plot.svg')}: ${ENOSPC}; the last good checkpoint, ${path.join(out, 'checkpoint-4')}, is kept: free space and run the same command again to resume from it`,
      );
      const svg = await fs.readFile(path.join(out, 'training_plot.svg'), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      await assertCheckpointComplete(path.join(out, 'checkpoint-4'), 4);
      await assertNoTemporaries(out);
      await freeSpace();
      expect((await runTrainingSession(await args(out, flags), { backend: 'wasm' })).resumedFrom).toBe(path.join(out, 'checkpoint-4'));
    }),
  );

  it.skipIf(skipTmpfsTests)('the final adapter and tokenizer: nothing half-moved into the output dir; resuming from the last checkpoint writes them', () =>
    onDisk(async () => {
      const out = path.join(disk, 'final');
      const flags = { maxSteps: '4', saveSteps: '2', loggingSteps: '100' };
      const page = await pageSize();
      // room for checkpoint-4 and a new plot, not for the 520 KB tokenizer copy
      const err = await failingRun(
        out,
        flags,
        4,
        async () => (await pagesOf(path.join(out, 'checkpoint-2'))) + (await pagesOf(path.join(out, 'training_plot.svg'))) + 16 * page,
      );
      expect(err.message).toMatch(
        new RegExp(
          `^cannot write ${escapeRe(out)}/(tokenizer\\.model|adapter_model\\.safetensors|adapter_config\\.json): ${escapeRe(ENOSPC)}; the last good checkpoint, ${escapeRe(path.join(out, 'checkpoint-4'))}, is kept: free space and run the same command again to resume from it, which writes the final result$`,
        ),
      );
      const top = await fs.readdir(out);
      for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'tokenizer.model', 'all_results.json']) expect(top).not.toContain(f);
      await assertCheckpointComplete(path.join(out, 'checkpoint-4'), 4);
      await assertNoTemporaries(out);
      await freeSpace();
      const resumed = await runTrainingSession(await args(out, flags), { backend: 'wasm' });
      expect(resumed.resumedFrom).toBe(path.join(out, 'checkpoint-4'));
      expect((await readPeftAdapter(out)).tensors.size).toBeGreaterThan(0);
      expect((await fs.stat(path.join(out, 'tokenizer.model'))).size).toBe((await fs.stat(path.join(FIX, 'tokenizers/chinese_sp.model'))).size);
    }),
  );

  it.skipIf(skipTmpfsTests)('the lock file on a disk already full: one line naming it, no empty lock and no output dir left behind', () =>
    onDisk(async () => {
      await fillLeaving(0);
      const out = path.join(disk, 'lock');
      const err = await runTrainingSession(await args(out, { maxSteps: '2' }), { backend: 'wasm' }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(CllamaError);
      expect(err!.message).toBe(`cannot write ${path.join(out, '.cllama-train.lock')}: ${ENOSPC}; nothing was trained yet: free space and run again`);
      expect(await exists(out)).toBe(false);
    }),
  );

  it.skipIf(skipTmpfsTests)(
    'the tokenized cache (CLI): one line naming the cache, exit 1, no output dir and no temporary left; a second run with space trains',
    async () => {
      await withTmpfs(16, async (cacheDisk, resize) => {
        const out = path.join(root, 'cache-out');
        const flags = tinyTrainFlags('pretrain', { datasetDir: textDir, outputDir: out, dataCacheDir: path.join(cacheDisk, 'cache') }, [
          '--stage',
          '2',
          '--max-steps',
          '2',
        ]);
        const r = spawnSync(process.execPath, [CLI, ...flags], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(1);
        const lines = errorLines(r.stderr);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(
          new RegExp(
            `^cllama-train: cannot write ${escapeRe(path.join(cacheDisk, 'cache'))}(/[\\w./]+)?: ${escapeRe(ENOSPC)}; nothing was trained yet: free space and run again$`,
          ),
        );
        expect(await exists(out)).toBe(false);
        expect(await fs.readdir(cacheDisk, { recursive: true })).toEqual(['cache']); // the empty cache root, no temporary
        resize(4096); // space is back
        const ok = spawnSync(process.execPath, [CLI, ...flags], { encoding: 'utf8' });
        expect(ok.status, ok.stderr).toBe(0);
      });
    },
  );
});

describe('write errors name the file the user will see', () => {
  it('temporary names of atomic writes (nested, staging) map back; core-style "cannot write" errors keep their words and get what to do', async () => {
    const { outputWriteError, visiblePath, TrainWriteError } = await import('../src/train/write-errors.js');
    expect(visiblePath('/o/..checkpoint-4.tmp-12-ab01.tmp-12-cd02/adapter_model.safetensors')).toBe('/o/checkpoint-4/adapter_model.safetensors');
    expect(visiblePath('/o/.cllama-final.tmp-77/.tokenizer.model.tmp-77-0a1b')).toBe('/o/tokenizer.model');
    expect(visiblePath('/o/.checkpoint-2.deleting-5-1700000000000')).toBe('/o/checkpoint-2');
    expect(visiblePath('/o/final/.x')).toBe('/o/final/.x');
    const core = new CllamaError(`cannot write /o/.checkpoint-4.tmp-1-ab/optimizer.safetensors: ${ENOSPC}`);
    const named = outputWriteError(core, '/o/checkpoint-4', 'then this') as Error;
    expect(named).toBeInstanceOf(TrainWriteError);
    expect(named.message).toBe(`cannot write /o/checkpoint-4/optimizer.safetensors: ${ENOSPC}; then this`);
    expect(outputWriteError(named, '/o', 'again')).toBe(named); // named once, by the innermost write
    // a raw error about an input (reading the dataset) is not a write error of the output
    const input = Object.assign(new Error("EACCES: permission denied, open '/data/a.txt'"), { code: 'EACCES', path: '/data/a.txt', syscall: 'open' });
    expect(outputWriteError(input, '/o', 'x')).toBe(input);
    const copy = Object.assign(new Error('ENOSPC: no space left on device, copyfile'), {
      code: 'ENOSPC',
      path: '/tok/t.model',
      dest: '/o/.cllama-final.tmp-9/.tokenizer.model.tmp-9-ff',
    });
    expect((outputWriteError(copy, '/o', 'x') as Error).message).toBe(`cannot write /o/tokenizer.model: ${ENOSPC}; x`);
    const other = new CllamaError('some other refusal');
    expect(outputWriteError(other, '/o', 'x')).toBe(other);
  });
});

describe('what a killed write leaves is cleaned up at the next start', () => {
  it("the trainer's temporaries (checkpoint, nested adapter, final staging, its files) are removed, anything else is kept", async () => {
    const { prepareOutputDir } = await import('../src/train/checkpoint.js');
    const out = path.join(root, 'leftovers');
    const ours = [
      '.checkpoint-4.tmp-1-ab',
      '..checkpoint-4.tmp-1-ab.tmp-1-cd',
      '.cllama-final.tmp-12',
      '..cllama-final.tmp-12.tmp-12-0f',
      '.metrics.jsonl.tmp-3-9a',
      '.checkpoint-2.deleting-3-1700000000000',
    ];
    const theirs = ['.notes.tmp-1-ab', 'final', '.cllama-train.lock'];
    await fs.mkdir(path.join(out, 'checkpoint-2'), { recursive: true });
    await fs.writeFile(path.join(out, 'checkpoint-2', 'trainer_state.json'), '{}');
    for (const n of [...ours, ...theirs]) await fs.mkdir(path.join(out, n));
    const plan = await prepareOutputDir(out, { overwrite: false });
    expect(plan.resumeFrom).toBe(path.join(out, 'checkpoint-2'));
    expect((await fs.readdir(out)).sort()).toEqual([...theirs, 'checkpoint-2'].sort());
  });
});
