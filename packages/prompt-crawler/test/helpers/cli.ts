/**
 * Runs the built `cllama-crawl` (dist/cli.js) as a child process, as a user runs it, building it first
 * when it is missing or older than the sources. `peakRss` runs the child with a preload that reports
 * its peak resident set size at exit (process.resourceUsage().maxRSS), so tests can bound memory.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const pkg = join(import.meta.dirname, '..', '..');
export const CLI = join(pkg, 'dist', 'cli.js');

/** Builds dist/ with tsup when it is missing or older than any source file. */
export function ensureBuilt(): void {
  const src = join(pkg, 'src');
  const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < newest) execFileSync('npx', ['tsup'], { cwd: pkg, stdio: 'ignore' });
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** peak RSS of the child in bytes (only with `peakRss`) */
  peakRssBytes?: number;
}

export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; peakRss?: boolean } = {}): Promise<CliRun> {
  const rssFile = opts.peakRss ? join(mkdtempSync(join(tmpdir(), 'crawl-rss-')), 'maxrss') : undefined;
  const preload = rssFile ? ['--import', pathToFileURL(join(import.meta.dirname, 'peak-rss.mjs')).href] : [];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...preload, CLI, ...args], {
      env: { ...process.env, OPENAI_BASE_URL: '', ...opts.env, ...(rssFile ? { CLLAMA_TEST_PEAK_RSS_FILE: rssFile } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code, signal) => {
      const peakRssBytes = rssFile && existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) * 1024 : undefined;
      resolve({ code, signal, stdout, stderr, peakRssBytes });
    });
  });
}

/** The non-empty lines of a text. */
export const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);
