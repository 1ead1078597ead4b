/**
 * Shared plumbing of the interop suites: the venv's Python (built by interop/venv.sh; its absence is a
 * failure, never a skip), the oracle job runner, the built CLIs, and the error measures every suite
 * reports.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const INTEROP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(INTEROP_DIR, '..');
export const FIXTURES = path.join(REPO_ROOT, 'test-fixtures');
export const VENV = process.env.CLLAMA_INTEROP_VENV ?? path.join(REPO_ROOT, '.venv-interop');
export const PYTHON = path.join(VENV, 'bin/python');
export const ORACLE = path.join(INTEROP_DIR, 'py/oracle.py');

export const CLI = {
  train: path.join(REPO_ROOT, 'packages/trainer/dist/cli.js'),
  lora: path.join(REPO_ROOT, 'packages/lora/dist/cli.js'),
  tokenizer: path.join(REPO_ROOT, 'packages/tokenizer-merge/dist/cli.js'),
} as const;

/** Fails (with what to run) when the venv or the built CLIs are missing: nothing here is ever skipped. */
export function assertReady(): void {
  if (!existsSync(PYTHON) || !existsSync(path.join(VENV, '.cllama-stamp')))
    throw new Error(`${VENV} is missing or incomplete: run 'npm run test:interop' (or 'bash interop/venv.sh') to build it`);
  for (const cli of Object.values(CLI)) if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first`);
}

/** Environment for Python children: the venv first on PATH (torchrun), offline, quiet. */
export function pythonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${path.join(VENV, 'bin')}:${process.env.PATH ?? ''}`,
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    TOKENIZERS_PARALLELISM: 'false',
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  };
}

export interface OracleRun<T = Record<string, unknown>> {
  results: T[];
  versions: Record<string, string>;
}

/** Runs a list of oracle.py jobs in one Python process; a failing job fails the call with Python's traceback. */
export async function oracle<T = Record<string, unknown>>(dir: string, jobs: Array<Record<string, unknown>>): Promise<OracleRun<T>> {
  const tag = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const jobsFile = path.join(dir, `jobs-${tag}.json`);
  const resultsFile = path.join(dir, `results-${tag}.json`);
  await fs.writeFile(jobsFile, JSON.stringify(jobs));
  try {
    await exec(PYTHON, [ORACLE, jobsFile, resultsFile], { env: pythonEnv(), maxBuffer: 1 << 26 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`oracle.py failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-25).join('\n')}`);
  }
  return JSON.parse(await fs.readFile(resultsFile, 'utf8')) as OracleRun<T>;
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs one of our built CLIs with node; never throws on a non-zero exit. */
export async function cli(which: keyof typeof CLI, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI[which], ...args], { maxBuffer: 1 << 28, cwd: opts.cwd, env: opts.env });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: typeof e.code === 'number' ? e.code : -1 };
  }
}

/** Like cli() but the run must succeed; returns stdout. */
export async function cliOk(which: keyof typeof CLI, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await cli(which, args, opts);
  if (r.code !== 0) throw new Error(`${which} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

export async function readFloat32(file: string): Promise<Float32Array> {
  const b = await fs.readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** max |a − b| / max |b|: the logits' error relative to their scale (the criterion is 1e-4). */
export function maxRelativeError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  if (ours.length !== theirs.length) throw new Error(`length ${ours.length} vs ${theirs.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ours.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i]! - theirs[i]!));
    scale = Math.max(scale, Math.abs(theirs[i]!));
  }
  return diff / scale;
}

export function relativeError(ours: number, theirs: number): number {
  return Math.abs(ours - theirs) / Math.abs(theirs);
}

/** Seeded ids in [0, vocab) (a tiny LCG: the same matrix on every run). */
export function seededIds(rows: number, cols: number, vocab: number, seed: number): number[][] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => next() % vocab));
}

/** Labels for `ids` with the first `masked` positions of row 0 set to -100 (prompt masking). */
export function labelsFor(ids: number[][], masked = 5): number[][] {
  return ids.map((r, i) => r.map((x, j) => (i === 0 && j < masked ? -100 : x)));
}

/** A summary line the suites print, so a CI log shows the figures and not only "passed". */
export function report(what: string, figures: Record<string, number | string>): void {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toExponential(2)) : v}`);
  console.log(`[interop] ${what}: ${parts.join(' ')}`);
}

/** Python versions, once per suite, for the log. */
export function pythonVersions(): string {
  return execFileSync(
    PYTHON,
    [
      '-c',
      'import torch, transformers, peft, tokenizers, sentencepiece; print(torch.__version__, transformers.__version__, peft.__version__, tokenizers.__version__, sentencepiece.__version__)',
    ],
    { encoding: 'utf8', env: pythonEnv() },
  ).trim();
}
