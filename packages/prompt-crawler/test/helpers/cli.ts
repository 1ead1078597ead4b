/**
 * Runs the installed `cllama-crawl` (bin/cllama-crawl.js → dist/cli.js) as a user runs it, through core's
 * shared run-bin helper: asynchronously (the tests' loopback servers live in the test's own process),
 * with its peak RSS measured and stderr's lines split. `ensureBuilt` builds dist/ first when it is
 * missing or older than the sources (nx builds it before the tests; this is for a bare `vitest run`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll } from 'vitest';
import { type BinRun, runBinAsync } from '../../../core/test/helpers/run-bin.js';
import { type FaultPlan, type FaultServer, startFaultServer } from './fault-server.js';

const pkg = join(import.meta.dirname, '..', '..');
export const BIN = join(pkg, 'bin', 'cllama-crawl.js');
const CLI = join(pkg, 'dist', 'cli.js');

/** Builds dist/ with tsup when it is missing or older than any source file. */
export function ensureBuilt(): void {
  const src = join(pkg, 'src');
  const newest = Math.max(...readdirSync(src, { recursive: true }).map((f) => statSync(join(src, String(f))).mtimeMs));
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < newest) execFileSync('npx', ['tsup'], { cwd: pkg, stdio: 'ignore' });
}

/** `cllama-crawl …args` with OPENAI_BASE_URL emptied (nothing from the shell leaks in) and `env` on top. */
export function runCli(args: string[], opts: Parameters<typeof runBinAsync>[2] = {}): Promise<BinRun> {
  return runBinAsync(BIN, args, { ...opts, env: { OPENAI_BASE_URL: '', ...opts.env } });
}

/**
 * The set-up of a test file that runs the CLI against fault servers: dist/ built before the tests, and
 * every server started through the returned `serve` closed after its test.
 */
export function cliTests(): (plan?: FaultPlan) => Promise<FaultServer> {
  const open: FaultServer[] = [];
  beforeAll(ensureBuilt);
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  return async (plan) => {
    const s = await startFaultServer(plan);
    open.push(s);
    return s;
  };
}

/** The non-empty lines of a text. */
export const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);
