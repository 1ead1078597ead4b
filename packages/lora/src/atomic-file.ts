/**
 * Atomic writes of user-facing files and folders.
 *
 * A file is written to a temporary name in the same folder, fsynced, then renamed over the target, so
 * a crash or an error never leaves a half-written file under the real name. A folder is built under a
 * temporary sibling name and renamed into place the same way.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** A temporary sibling path of `target` (same folder, so the final rename stays on one filesystem). */
export function temporarySiblingPath(target: string, tag = 'tmp'): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a folder so that a rename inside it survives a power cut (ignored where unsupported). */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some filesystems (and Windows) refuse to fsync a directory; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Write a file atomically. `fill` receives an open handle on the temporary file and writes the content;
 * the handle is fsynced and closed, then renamed over `target`. On any error the temporary file is removed.
 */
export async function writeFileAtomic(
  target: string,
  fill: (handle: fs.FileHandle) => Promise<void>,
): Promise<void> {
  const tmp = temporarySiblingPath(target);
  const handle = await fs.open(tmp, 'wx');
  try {
    await fill(handle);
    await handle.sync();
    await handle.close();
    await fs.rename(tmp, target);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(path.dirname(target));
}

/** Write a whole text or byte buffer atomically. */
export async function writeBytesAtomic(target: string, content: string | Uint8Array): Promise<void> {
  await writeFileAtomic(target, async (handle) => {
    await handle.writeFile(content);
  });
}

/** Write all of `bytes` at the handle's current position (handles short writes). */
export async function writeFully(handle: fs.FileHandle, bytes: Uint8Array, position?: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(
      bytes,
      written,
      bytes.length - written,
      position === undefined ? null : position + written,
    );
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    written += bytesWritten;
  }
}

/** Read exactly `length` bytes at `position` into `target` (handles short reads); false on EOF. */
export async function readFully(
  handle: fs.FileHandle,
  target: Uint8Array,
  position: number,
): Promise<boolean> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

export class FolderExistsError extends Error {
  constructor(readonly dir: string) {
    super(
      `Output folder ${dir} already exists and is not empty. Choose another --out folder, remove it, ` +
        `or ask to overwrite it (--overwrite).`,
    );
    this.name = 'FolderExistsError';
  }
}

/**
 * Build a folder atomically: `fill` writes into a fresh temporary sibling folder, which is then renamed
 * to `dir`. An existing empty `dir` is replaced; an existing non-empty one is refused unless
 * `overwrite` is set (then the old folder is moved aside and deleted only after the new one is in place).
 */
export async function writeFolderAtomic(
  dir: string,
  fill: (tmpDir: string) => Promise<void>,
  opts: { overwrite?: boolean } = {},
): Promise<void> {
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const existing = await folderState(target);
  if (existing === 'non-empty' && !opts.overwrite) throw new FolderExistsError(target);
  if (existing === 'file') {
    throw new FolderExistsError(target);
  }
  const tmp = temporarySiblingPath(target);
  await fs.mkdir(tmp);
  try {
    await fill(tmp);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  let aside: string | undefined;
  if (existing === 'empty') {
    await fs.rmdir(target);
  } else if (existing === 'non-empty') {
    aside = temporarySiblingPath(target, 'old');
    await fs.rename(target, aside);
  }
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    if (aside) await fs.rename(aside, target).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(path.dirname(target));
  if (aside) await fs.rm(aside, { recursive: true, force: true });
}

async function folderState(dir: string): Promise<'missing' | 'empty' | 'non-empty' | 'file'> {
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory()) return 'file';
    const entries = await fs.readdir(dir);
    return entries.length === 0 ? 'empty' : 'non-empty';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}
