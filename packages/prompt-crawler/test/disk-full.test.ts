/**
 * A full disk under the crawl's files (issue #21): a 64 KiB tmpfs fills up mid-crawl. The built CLI must
 * stop with ONE line naming the file it could not write, exit 1, leave every file ending in a complete
 * line (the failed append cut back, nothing torn), and the same command must finish the crawl once
 * there is room again. Needs root to mount the tmpfs (CI runs as root); skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { normalizeInstruction } from '../src/filters.js';
import { ensureBuilt, lines, runCli } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const KEY = 'sk-cllama-DISKFULL-3e5a7c9b1d2f4a6c8e0b';

function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), 'crawl-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const root = canMount();

beforeAll(ensureBuilt);

let server: FaultServer | undefined;
let mounted: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (mounted) execFileSync('umount', [mounted]);
  mounted = undefined;
});

describe('a full disk under --out', () => {
  it.skipIf(!root)('stops with one line naming the file, exit 1, no torn line; the same command resumes once there is room', async () => {
    server = await startFaultServer({ seed: 11, itemsPerReply: 5 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-diskfull-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    mounted = dir;
    const out = join(dir, 'out.jsonl');
    const N = 1500;
    const args = ['--out', out, '--count', String(N), '--base-url', server.url, '--concurrency', '2', '--quiet', '--status-every', '3600'];

    const full = await runCli(args, { env: { OPENAI_API_KEY: KEY } });
    expect(full.code, full.stderr).toBe(1);
    const err = lines(full.stderr);
    expect(err, full.stderr).toHaveLength(1);
    const file = `${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\.(rejects|failures|journal)\\.jsonl)?`;
    expect(err[0]).toMatch(
      new RegExp(
        `^cllama-crawl: cannot write ${file}: no space left on device \\(ENOSPC\\); it was cut back to its last complete line, everything written before is kept — free some space and run the same command again to continue$`,
      ),
    );
    // every file holds whole lines only: nothing torn for the next run to repair
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (text.length > 0) expect(text.endsWith('\n'), f).toBe(true);
      for (const l of lines(text)) expect(() => JSON.parse(l), f).not.toThrow();
    }
    expect(existsSync(`${out}.lock`)).toBe(false);
    const kept = lines(readFileSync(out, 'utf8'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(N);
    for (const l of kept) expect(server.ledger.served.get(JSON.parse(l).instruction)).toEqual(JSON.parse(l));

    // room again: the same command finishes the crawl, keeping what was there
    execFileSync('mount', ['-o', 'remount,size=8m', dir]);
    const resumed = await runCli(args, { env: { OPENAI_API_KEY: KEY } });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`done: ${N} items in ${out}`);
    expect(resumed.stdout).not.toMatch(/repaired/);
    const items = lines(readFileSync(out, 'utf8')).map((l) => JSON.parse(l));
    expect(items).toHaveLength(N);
    expect(items.slice(0, kept.length).map((i) => JSON.stringify(i))).toEqual(kept);
    expect(new Set(items.map((i) => normalizeInstruction(i.instruction))).size).toBe(N);
    for (const it of items) expect(server.ledger.served.get(it.instruction)).toEqual(it);
  });
});
