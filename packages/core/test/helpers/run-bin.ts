/**
 * Runs a package's built bin as a user does (node bin/<cli>.js …) for the packages' fault tests, and
 * measures its peak RSS (a preloaded exit hook), so memory bounds can be asserted on the real process.
 * `runBin` waits synchronously; `runBinAsync` keeps the test's event loop running, for a bin that talks
 * to a server in the test's own process (the crawler against a loopback server), and can hand the child
 * to the test (to kill it mid-run). Shared like disk-full.ts (the packages' tsconfig includes this folder).
 */
import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peak-rss.mjs');

export interface BinRun {
  code: number | null;
  /** The signal that ended the bin (a kill, the timeout), else null. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stderr's non-empty lines. */
  lines: string[];
  /** Peak resident memory of the bin's process, in kB (NaN if it did not exit normally). */
  peakKb: number;
}

export interface BinOptions {
  cwd?: string;
  /** Variables set for the bin on top of this process's environment (undefined: unset). */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** A folder for the peak-RSS file, the bin's argv and its environment. */
function prepare(bin: string, args: readonly string[], env: BinOptions['env']) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cllama-run-'));
  const peakFile = path.join(dir, 'peak');
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env ?? {})) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  childEnv.PEAK_RSS_FILE = peakFile;
  return { dir, peakFile, argv: ['--import', PRELOAD, bin, ...args], env: childEnv };
}

function finish(dir: string, peakFile: string, r: Omit<BinRun, 'lines' | 'peakKb'>): BinRun {
  let peakKb = Number.NaN;
  try {
    peakKb = Number(readFileSync(peakFile, 'utf8'));
  } catch {
    // killed or crashed: no exit hook ran
  }
  rmSync(dir, { recursive: true, force: true });
  return { ...r, lines: r.stderr.split('\n').filter(Boolean), peakKb };
}

/** Run `node <bin> …args` and wait for it; `stdout` may be a file descriptor (e.g. of /dev/full). */
export function runBin(bin: string, args: readonly string[], opts: BinOptions & { stdout?: number } = {}): BinRun {
  const p = prepare(bin, args, opts.env);
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(process.execPath, p.argv, {
      encoding: 'utf8',
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 1 << 26,
      stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
      env: p.env,
    });
  } catch (err) {
    rmSync(p.dir, { recursive: true, force: true });
    throw err;
  }
  return finish(p.dir, p.peakFile, { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
}

/** Run `node <bin> …args` without blocking the event loop; `onSpawn` gets the child (to kill it, say). */
export function runBinAsync(bin: string, args: readonly string[], opts: BinOptions & { onSpawn?: (child: ChildProcess) => void } = {}): Promise<BinRun> {
  const p = prepare(bin, args, opts.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, p.argv, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, stdio: ['ignore', 'pipe', 'pipe'], env: p.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      rmSync(p.dir, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (code, signal) => resolve(finish(p.dir, p.peakFile, { code, signal, stdout, stderr })));
    opts.onSpawn?.(child);
  });
}

/** The run failed with exit `code` and exactly one line on stderr matching `pattern`. */
export function expectOneLine(r: BinRun, pattern: RegExp, code = 1): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.lines, r.stderr).toHaveLength(1);
  expect(r.lines[0]).toMatch(pattern);
}

/** `text` as a literal inside a RegExp. */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The checks of every package's cli-errors test: `run(...args)` spawns the bin (named by its file,
 * bin/<cli>.js) from `cwd` with no API key in its environment, and `expectOneLine(args, code, pattern)`
 * expects exit `code` and ONE stderr line `<cli>: …` matching `pattern`.
 */
export function cliErrorChecks(bin: string, cwd: string) {
  const prefix = new RegExp(`^${literal(path.basename(bin, '.js'))}: \\S`);
  const run = (...args: string[]) => runBin(bin, args, { cwd, env: { OPENAI_API_KEY: '' } });
  return {
    run,
    expectOneLine(args: string[], code: number, pattern: RegExp): void {
      const r = run(...args);
      expectOneLine(r, prefix, code);
      expect(r.lines[0]).toMatch(pattern);
    },
  };
}
