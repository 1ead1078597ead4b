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
import { errorLines, exists, FIXTURES, TINY_LLAMA, tinyTrainFlags } from './helpers.js';

const PKG = path.resolve(__dirname, '..');
const CLI = path.join(PKG, 'dist/cli.js');
const TINY = TINY_LLAMA;
let root: string;
let textDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-round2-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  const lines = (await fs.readFile(path.join(FIXTURES, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 80);
  await fs.writeFile(path.join(textDir, 'zh.txt'), lines.join('\n'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: PKG, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
}

function pretrainFlags(outputDir: string, extra: string[] = []): string[] {
  return tinyTrainFlags('pretrain', { datasetDir: textDir, outputDir, dataCacheDir: path.join(root, 'cache') }, [
    '--logging-steps',
    '1',
    '--seed',
    '3',
    ...extra,
  ]);
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

describe('SFT examples that keep no trained token after truncation (#7)', () => {
  const long = (i: number) => ({ instruction: `${'请详细解释一下这个非常长的问题，'.repeat(8)}第${i}个`, input: '', output: `答案${i}` });
  const short = (i: number) => ({ instruction: `问题${i}`, input: '', output: `这是第${i}个答案。` });
  const sftFlags = (dataDir: string, out: string, extra: string[] = []) =>
    tinyTrainFlags('sft', { datasetDir: dataDir, outputDir: out }, ['--max-seq-length', '100', '--max-steps', '1', '--logging-steps', '1', ...extra]);
  const writeData = async (name: string, records: object[]) => {
    const dir = path.join(root, name);
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'train.json'), JSON.stringify(records));
    return dir;
  };

  it('every example truncated to its prompt: refused in one line with the count and what to do, exit 1, no output dir', async () => {
    const data = await writeData('sft-all-long', [0, 1, 2, 3, 4, 5].map(long));
    const out = path.join(root, 'sft-all-long-out');
    const r = cli(sftFlags(data, out));
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      'cllama-train: all 6 training examples have no trained token after truncation to --max-seq-length 100 (the prompt fills each one), so the loss would be 0 and nothing learned: raise --max-seq-length or shorten the prompts',
    );
    expect(await exists(out)).toBe(false);
    // with room for the answers the same data trains
    const ok = cli(sftFlags(data, out, ['--max-seq-length', '256']));
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).not.toMatch(/no trained token/);
  });

  it('some examples truncated to their prompt: one warning line with the count, and the run trains on the others', async () => {
    const data = await writeData('sft-some-long', [long(0), short(1), long(2), short(3), short(4), short(5), short(6), short(7)]);
    const out = path.join(root, 'sft-some-long-out');
    const r = cli(sftFlags(data, out));
    expect(r.status, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('no trained token'));
    expect(warnings).toEqual([
      'cllama-train: warning: 2 of 8 training examples have no trained token after truncation to --max-seq-length 100 (the prompt fills them) and add nothing to the loss: raise --max-seq-length or shorten those prompts',
    ]);
    expect(await exists(path.join(out, 'adapter_model.safetensors'))).toBe(true);
    const log = JSON.parse((await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n')[0]!);
    expect(log.loss).toBeGreaterThan(1);
  });

  it('--do-eval on a --validation-file whose examples all lose their answers is refused; a cache hit is checked the same way', async () => {
    const data = await writeData('sft-eval-long', [0, 1, 2, 3].map(short));
    const valid = path.join(root, 'valid-long.json');
    await fs.writeFile(valid, JSON.stringify([long(0), long(1)]));
    const out = path.join(root, 'sft-eval-long-out');
    const cache = path.join(root, 'sft-eval-cache');
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = cli(sftFlags(data, out, ['--validation-file', valid, '--do-eval', '--data-cache-dir', cache]));
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([
        'cllama-train: all 2 evaluation examples have no trained token after truncation to --max-seq-length 100 (the prompt fills each one), so the loss would be 0 and nothing learned: raise --max-seq-length or shorten the prompts',
      ]);
      expect(await exists(out)).toBe(false);
    }
    expect((await fs.readdir(cache)).length).toBe(2); // the second attempt read the cached datasets
  });

  it('--emit-launch says what a run says: the same one warning line (some examples), the same refusal (all of them, or of the --do-eval split)', async () => {
    const emitOf = (name: string) => path.join(root, `${name}-launch`);
    const some = await writeData('sft-some-long-emit', [long(0), short(1), long(2), short(3), short(4), short(5), short(6), short(7)]);
    const ok = cli(sftFlags(some, path.join(root, 'sft-some-emit-out'), ['--emit-launch', emitOf('some')]));
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr.split('\n').filter((l) => l.includes('no trained token'))).toEqual([
      'cllama-train: warning: 2 of 8 training examples have no trained token after truncation to --max-seq-length 100 (the prompt fills them) and add nothing to the loss: raise --max-seq-length or shorten those prompts',
    ]);
    expect(await exists(path.join(emitOf('some'), 'launch.sh'))).toBe(true);
    const all = await writeData('sft-all-long-emit', [0, 1, 2, 3, 4, 5].map(long));
    const refused = cli(sftFlags(all, path.join(root, 'sft-all-emit-out'), ['--emit-launch', emitOf('all')]));
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr.trim().split('\n')).toEqual([
      'cllama-train: all 6 training examples have no trained token after truncation to --max-seq-length 100 (the prompt fills each one), so the loss would be 0 and nothing learned: raise --max-seq-length or shorten the prompts',
    ]);
    expect(await exists(emitOf('all'))).toBe(false);
    const valid = path.join(root, 'valid-long-emit.json');
    await fs.writeFile(valid, JSON.stringify([long(0), long(1)]));
    const noEval = cli(
      sftFlags(await writeData('sft-eval-long-emit', [0, 1, 2, 3].map(short)), path.join(root, 'sft-eval-emit-out'), [
        '--validation-file',
        valid,
        '--do-eval',
        '--emit-launch',
        emitOf('eval'),
      ]),
    );
    expect(noEval.status, noEval.stderr).toBe(1);
    expect(noEval.stderr.trim().split('\n')).toEqual([
      'cllama-train: all 2 evaluation examples have no trained token after truncation to --max-seq-length 100 (the prompt fills each one), so the loss would be 0 and nothing learned: raise --max-seq-length or shorten the prompts',
    ]);
    expect(await exists(emitOf('eval'))).toBe(false);
  });
});

describe('resume refuses a changed --lora-alpha or another base model of the same shapes (#12)', () => {
  const stage2 = (out: string, extra: string[] = []) =>
    pretrainFlags(out, ['--stage', '2', '--lora-rank', '4', '--trainable', 'q_proj,v_proj', '--save-steps', '2', '--max-steps', '2', ...extra]);

  it('--lora-alpha 32 on a checkpoint trained with 16: one line, exit 1, the checkpoint untouched; 16 resumes', async () => {
    const out = path.join(root, 'alpha');
    const first = cli(stage2(out, ['--lora-alpha', '16']));
    expect(first.status, first.stderr).toBe(0);
    const state = JSON.parse(await fs.readFile(path.join(out, 'checkpoint-2/trainer_state.json'), 'utf8'));
    expect(state.identity.loraAlpha).toBe(16);
    expect(state.identity.baseModel.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const before = await fs.readFile(path.join(out, 'checkpoint-2/adapter_model.safetensors'));
    const changed = cli(stage2(out, ['--lora-alpha', '32', '--max-steps', '4']));
    expect(changed.status, changed.stderr).toBe(1);
    expect(errorLines(changed.stderr)).toEqual([
      `cllama-train: ${path.join(out, 'checkpoint-2')} was trained with --lora-alpha 16, not 32 (the adapter's scale alpha/r would change under its weights); resume with --lora-alpha 16, or start over with --overwrite-output-dir`,
    ]);
    expect((await fs.readFile(path.join(out, 'checkpoint-2/adapter_model.safetensors'))).equals(before)).toBe(true);
    expect(await exists(path.join(out, 'checkpoint-4'))).toBe(false);
    const same = cli(stage2(out, ['--lora-alpha', '16', '--max-steps', '4']));
    expect(same.status, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/resumed_from: .*checkpoint-2/);
  });

  it('another base model of the same shapes is refused; the same weights re-saved in shards are accepted', async () => {
    const { loadLlama, saveLlama } = await import('../src/model/io.js');
    const { initBackend } = await import('../src/backend.js');
    const { LlamaModel } = await import('../src/model/llama.js');
    await initBackend('wasm');
    const base = await loadLlama(TINY);
    const other = path.join(root, 'other-base');
    const random = LlamaModel.random(base.config, 7);
    await saveLlama(other, random);
    random.dispose();
    const sharded = path.join(root, 'sharded-base');
    await saveLlama(sharded, base, { maxShardBytes: 100_000 });
    base.dispose();
    expect((await fs.readdir(sharded)).filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(1);

    const out = path.join(root, 'base');
    const first = cli(stage2(out));
    expect(first.status, first.stderr).toBe(0);
    const fingerprint = JSON.parse(await fs.readFile(path.join(out, 'checkpoint-2/trainer_state.json'), 'utf8')).identity.baseModel.fingerprint;
    const swap = (model: string, steps: string) => stage2(out, ['--max-steps', steps]).map((a) => (a === TINY ? model : a));
    const wrong = cli(swap(other, '4'));
    expect(wrong.status, wrong.stderr).toBe(1);
    const lines = errorLines(wrong.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^cllama-train: .*checkpoint-2 was trained on another base model \\(.*tiny-llama, fingerprint ${fingerprint}; --model-name-or-path .*other-base has [0-9a-f]{16}\\); resume with the same base model, or start over with --overwrite-output-dir$`,
      ),
    );
    expect(await exists(path.join(out, 'checkpoint-4'))).toBe(false);
    const resharded = cli(swap(sharded, '4'));
    expect(resharded.status, resharded.stderr).toBe(0);
    expect(resharded.stdout).toMatch(/resumed_from: .*checkpoint-2/);
  });
});

describe('one run per --output-dir: the lock file (#4)', () => {
  const lockOf = (out: string) => path.join(out, '.cllama-train.lock');
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: PKG, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    return { child, done, out: () => stdout, err: () => stderr };
  };
  const waitFor = async (cond: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 120_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const long = (out: string, extra: string[] = []) =>
    pretrainFlags(out, ['--stage', '2', '--lora-rank', '4', '--max-steps', '30', '--save-steps', '3', ...extra]);

  it('a second run into the same folder, started while the first trains, is refused in one line naming the lock and the pid; the first is unaffected', async () => {
    const out = path.join(root, 'locked');
    const first = start(long(out));
    await waitFor(() => exists(path.join(out, 'checkpoint-3')), 'checkpoint-3');
    const lock = JSON.parse(await fs.readFile(lockOf(out), 'utf8'));
    expect(lock.pid).toBe(first.child.pid);
    const second = start(long(out, ['--learning-rate', '1e-3', '--seed', '9']));
    const refused = await second.done;
    expect(refused.code, second.err()).toBe(1);
    const lines = second.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `cllama-train: --output-dir ${out} is in use by another cllama-train run (pid ${first.child.pid}, started ${lock.started}; lock file ${lockOf(out)}): wait for it to finish, or choose another --output-dir`,
    );
    expect(second.out()).toBe('');
    const finished = await first.done;
    expect(finished.code, first.err()).toBe(0);
    const steps = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    expect(steps).toEqual(Array.from({ length: 30 }, (_, i) => i + 1)); // one run's lines, once each
    expect(await exists(lockOf(out))).toBe(false);
    // once the first has finished, the folder is free again
    const after = cli(long(out, ['--max-steps', '33']));
    expect(after.status, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/resumed_from: .*checkpoint-30/);
  }, 300_000);

  it('SIGTERM and SIGINT release the lock and end the process by that signal; the next run resumes', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const out = path.join(root, `signal-${signal}`);
      const run = start(long(out, ['--max-steps', '300']));
      await waitFor(() => exists(path.join(out, 'checkpoint-3')), 'checkpoint-3');
      expect(await exists(lockOf(out))).toBe(true);
      run.child.kill(signal);
      expect(await run.done).toEqual({ code: null, signal });
      expect(await exists(lockOf(out))).toBe(false);
      const next = cli(long(out, ['--max-steps', '6']));
      expect(next.status, next.stderr).toBe(0);
      expect(next.stdout).toMatch(/resumed_from: .*checkpoint-\d+/);
    }
  }, 300_000);

  it('a stale lock (its pid has exited on this host, e.g. after SIGKILL) is taken over; one of another host is refused with what to do', async () => {
    const out = path.join(root, 'stale');
    const killed = start(long(out, ['--max-steps', '300']));
    await waitFor(() => exists(path.join(out, 'checkpoint-3')), 'checkpoint-3');
    killed.child.kill('SIGKILL');
    await killed.done;
    expect(JSON.parse(await fs.readFile(lockOf(out), 'utf8')).pid).toBe(killed.child.pid);
    const resumed = cli(long(out, ['--max-steps', '6']));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resumed_from: .*checkpoint-\d+/);
    expect(await exists(lockOf(out))).toBe(false);

    const foreign = { pid: 4242, host: 'other-machine.example', started: '2026-01-02T03:04:05.000Z', token: 'abc', command: [] };
    await fs.writeFile(lockOf(out), JSON.stringify(foreign));
    const refused = cli(long(out, ['--max-steps', '9']));
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `cllama-train: --output-dir ${out} is in use by another cllama-train run (pid 4242 on host other-machine.example, started 2026-01-02T03:04:05.000Z; lock file ${lockOf(out)}): wait for it to finish (if that run is gone, remove ${lockOf(out)}), or choose another --output-dir`,
    );
    expect(JSON.parse(await fs.readFile(lockOf(out), 'utf8'))).toEqual(foreign); // not touched
  }, 300_000);

  it('a run refused before training (no data) leaves neither the folder it created nor a lock', async () => {
    const empty = path.join(root, 'short-text');
    await fs.mkdir(empty);
    await fs.writeFile(path.join(empty, 'a.txt'), '短\n');
    const out = path.join(root, 'never-locked');
    const r = cli(pretrainFlags(out, ['--max-steps', '1']).map((a) => (a === textDir ? empty : a)));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/gives no complete block of 32 tokens/);
    expect(await exists(out)).toBe(false);
  });
});
