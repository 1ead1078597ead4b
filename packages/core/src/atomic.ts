/**
 * Atomic writes of files and folders: nothing is ever half-written under its real name.
 *
 * A file is written to a hidden temporary sibling (same folder, so the final rename stays on one file
 * system), fsynced, renamed over the target, and the folder fsynced so that the rename survives a
 * power cut. A folder is built the same way under a temporary sibling name and renamed into place; an
 * existing non-empty target is refused unless `force`, and then moved aside and deleted only after
 * the new folder is in place. On any error the temporary file or folder is removed and the target is
 * as it was.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, promises as fsp, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CllamaError } from './errors.js';

/** A hidden temporary sibling path of `target`: `.<name>.<tag>-<pid>-<random>` in the same folder. */
export function tempSibling(target: string, tag = 'tmp'): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a folder so that a rename inside it survives a crash (ignored where folders cannot be fsynced). */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems (and Windows) refuse to fsync a folder; the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** A file output that is an existing folder is refused before anything is written (instead of a raw EISDIR from the rename). */
async function refuseFolderTarget(target: string): Promise<void> {
  const st = await fsp.stat(target).catch(() => undefined);
  if (st?.isDirectory()) throw new CllamaError(`${target} is a folder; give a file path for this output`);
}

/** What to write: text, bytes, or a function that writes through the open handle of the temporary file. */
export type FileContent = string | Uint8Array | ((handle: fsp.FileHandle) => Promise<void>);

/** Write a file atomically (temp sibling, fsync, rename, fsync the folder). */
export async function writeFileAtomic(target: string, content: FileContent): Promise<void> {
  await refuseFolderTarget(target);
  const tmp = tempSibling(target);
  const handle = await fsp.open(tmp, 'wx');
  try {
    if (typeof content === 'function') await content(handle);
    else await handle.writeFile(content);
    await handle.sync();
    await handle.close();
    await fsp.rename(tmp, target);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/** The synchronous form of `writeFileAtomic` for small state files. */
export function writeFileAtomicSync(target: string, content: string | Uint8Array): void {
  const tmp = tempSibling(target);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Copy a file atomically (the copy is fsynced before it is renamed into place). */
export async function copyFileAtomic(source: string, target: string): Promise<void> {
  await refuseFolderTarget(target);
  const tmp = tempSibling(target);
  try {
    await fsp.copyFile(source, tmp);
    const handle = await fsp.open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/**
 * A buffered, atomic file writer for large outputs (JSON lines, binary arrays): appends go to a temp
 * file; `commit()` fsyncs and renames it over the target; `abort()` deletes it.
 */
export class AtomicFileWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private written = 0;
  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private fh: fsp.FileHandle,
    private readonly flushBytes: number,
  ) {}

  static async create(target: string, opts: { flushBytes?: number } = {}): Promise<AtomicFileWriter> {
    await refuseFolderTarget(target);
    const tmp = tempSibling(target);
    const fh = await fsp.open(tmp, 'w');
    return new AtomicFileWriter(target, tmp, fh, opts.flushBytes ?? 1 << 20);
  }

  /** Bytes appended so far (buffered or on disk). */
  get bytes(): number {
    return this.written + this.buffered;
  }

  /**
   * Append bytes or text. Bytes are copied (callers may reuse their arrays) unless `owned` says the
   * caller hands the array over and will not touch it again.
   */
  async write(data: string | Uint8Array, owned = false): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.chunks.push(typeof data === 'string' || owned ? buf : Buffer.from(buf));
    this.buffered += buf.length;
    if (this.buffered >= this.flushBytes) await this.flush();
  }

  /** Overwrite bytes at an absolute position (used to patch headers); flushes pending data first. */
  async writeAt(position: number, data: Uint8Array): Promise<void> {
    await this.flush();
    await this.fh.write(data, 0, data.length, position);
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    await this.fh.write(all, 0, all.length, this.written);
    this.written += all.length;
  }

  /** Flush, fsync, close and rename into place. */
  async commit(): Promise<void> {
    await this.prepare();
    await this.publish();
  }

  /** Flush, fsync and close: the data is safe in the temp file, the target not yet touched. */
  async prepare(): Promise<void> {
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
  }

  /** Rename the prepared temp file over the target (several outputs: prepare them all, then publish). */
  async publish(): Promise<void> {
    await fsp.rename(this.tempPath, this.target);
    await fsyncDir(path.dirname(this.target));
  }

  /** Close and delete the temp file; the target is left as it was. Safe to call twice. */
  async abort(): Promise<void> {
    try {
      await this.fh.close();
    } catch {
      // already closed
    }
    await fsp.rm(this.tempPath, { force: true });
  }
}

/** The output folder exists (and is not empty, or is a file) and `force` was not given. */
export class FolderExistsError extends CllamaError {
  constructor(
    readonly dir: string,
    problem: 'not-empty' | 'file' = 'not-empty',
  ) {
    super(
      problem === 'file'
        ? `${dir} exists and is a file; choose another output folder`
        : `${dir} exists and is not empty; choose another output folder, remove it, or pass --force to replace it`,
    );
  }
}

/** What is at a folder path: nothing, an empty folder, a non-empty folder, or something that is not a folder. */
export async function folderState(dir: string): Promise<'missing' | 'empty' | 'non-empty' | 'file'> {
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) return 'file';
    return (await fsp.readdir(dir)).length === 0 ? 'empty' : 'non-empty';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

/**
 * Build a folder atomically: `fill` writes into a fresh temporary sibling folder (or is a map of file
 * names to contents, each written and fsynced), which is fsynced and
 * renamed to `dir`. An existing empty `dir` is replaced; an existing non-empty one is refused with
 * `FolderExistsError` unless `force` (then the old folder is moved aside and deleted only after the
 * new one is in place). The parent folders are created.
 */
export async function writeFolderAtomic(
  dir: string,
  fill: ((tmpDir: string) => Promise<void>) | Readonly<Record<string, string | Uint8Array>>,
  opts: { force?: boolean } = {},
): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const existing = await folderState(target);
  if (existing === 'file') throw new FolderExistsError(dir, 'file');
  if (existing === 'non-empty' && !opts.force) throw new FolderExistsError(dir);
  try {
    await fsp.mkdir(parent, { recursive: true });
  } catch (err) {
    throw new CllamaError(`cannot create ${parent}: ${(err as Error).message}`, { cause: err });
  }
  const tmp = tempSibling(target);
  await fsp.mkdir(tmp);
  try {
    if (typeof fill === 'function') await fill(tmp);
    else for (const [name, content] of Object.entries(fill)) await writeFileInto(path.join(tmp, name), content);
    await fsyncDir(tmp);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  let aside: string | undefined;
  try {
    if (existing === 'empty') await fsp.rmdir(target);
    else if (existing === 'non-empty') {
      aside = tempSibling(target, 'old');
      await fsp.rename(target, aside);
    }
    await fsp.rename(tmp, target);
  } catch (err) {
    if (aside) await fsp.rename(aside, target).catch(() => undefined);
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(parent);
  if (aside) await fsp.rm(aside, { recursive: true, force: true });
}

async function writeFileInto(file: string, content: string | Uint8Array): Promise<void> {
  const handle = await fsp.open(file, 'wx');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
