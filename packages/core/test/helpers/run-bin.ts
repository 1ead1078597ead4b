/**
 * Runs a package's built bin as a user does (node bin/<cli>.js …) for the packages' fault tests, and
 * measures its peak RSS (a preloaded exit hook), so memory bounds can be asserted on the real process.
 * Shared like disk-full.ts (the packages' tsconfig includes this folder).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peak-rss.mjs');

export interface BinRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stderr's non-empty lines. */
  lines: string[];
  /** Peak resident memory of the bin's process, in kB (NaN if it did not exit normally). */
  peakKb: number;
}

/** Run `node <bin> …args`; `stdout` may be a file descriptor (e.g. of /dev/full). */
export function runBin(bin: string, args: readonly string[], opts: { cwd?: string; stdout?: number; timeoutMs?: number } = {}): BinRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'cllama-run-'));
  const peakFile = path.join(dir, 'peak');
  try {
    const r = spawnSync(process.execPath, ['--import', PRELOAD, bin, ...args], {
      encoding: 'utf8',
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 1 << 26,
      stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
      env: { ...process.env, PEAK_RSS_FILE: peakFile },
    });
    let peakKb = Number.NaN;
    try {
      peakKb = Number(readFileSync(peakFile, 'utf8'));
    } catch {
      // killed or crashed: no exit hook ran
    }
    const stderr = r.stderr ?? '';
    return { code: r.status, stdout: r.stdout ?? '', stderr, lines: stderr.split('\n').filter(Boolean), peakKb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
