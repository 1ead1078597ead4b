/**
 * A full disk for tests: a small tmpfs mounted on a fresh temporary folder (root only, Linux; CI runs
 * as root, so there these tests run). Shared by the packages' disk-full tests (their tsconfig includes
 * this file); `canMountTmpfs` says whether they can run here.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** True where a tmpfs can be mounted (root on Linux). */
export const canMountTmpfs = process.platform === 'linux' && process.getuid?.() === 0;

/** Run `fn` with a folder on a fresh tmpfs of `sizeKiB` KiB; it is unmounted and removed afterwards. */
export async function withTmpfs<T>(sizeKiB: number, fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cllama-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  try {
    return await fn(dir);
  } finally {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}
