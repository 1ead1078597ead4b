/**
 * A full disk for tests: a small tmpfs mounted on a fresh temporary folder (root on Linux; CI runs as
 * root). Shared by the packages' disk-full tests (their tsconfig includes this file).
 *
 * These tests are never skipped silently: where no tmpfs can be mounted (not root, not Linux) `withTmpfs`
 * fails the test with one line saying why and what to do. Only an explicit CLLAMA_SKIP_TMPFS_TESTS=1
 * skips them (`it.skipIf(skipTmpfsTests)`), and vitest then reports them as skipped.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** True when the user asked to skip the disk-full tests (CLLAMA_SKIP_TMPFS_TESTS=1). */
export const skipTmpfsTests = process.env.CLLAMA_SKIP_TMPFS_TESTS === '1';

function mount(args: string[]): void {
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why =
      process.platform !== 'linux'
        ? `this is ${process.platform}, not Linux`
        : process.getuid?.() !== 0
          ? 'not running as root'
          : String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim() || (err as Error).message;
    throw new Error(
      `cannot mount a tmpfs for this disk-full test (${why.replace(/\s*\n\s*/g, ' ')}); run the tests as root on Linux (CI does), or set CLLAMA_SKIP_TMPFS_TESTS=1 to skip the disk-full tests`,
    );
  }
}

/**
 * Run `fn` with a folder on a fresh tmpfs of `sizeKiB` KiB (`resize` changes its size, to make room
 * again); it is unmounted and removed afterwards.
 */
export async function withTmpfs<T>(sizeKiB: number, fn: (dir: string, resize: (sizeKiB: number) => void) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cllama-full-'));
  try {
    mount(['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  try {
    return await fn(dir, (kib) => mount(['-o', `remount,size=${kib}k`, dir]));
  } finally {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}
