/**
 * Atomic writes of files and folders: nothing is ever half-written under its real name.
 *
 * A file is written to a hidden temporary sibling (same folder, so the final rename stays on one file
 * system), fsynced, renamed over the target, and the folder fsynced so that the rename survives a
 * power cut. A folder is built the same way under a temporary sibling name and renamed into place; an
 * existing non-empty target is refused unless `force`, and then moved aside and deleted only after
 * the new folder is in place. On any error the temporary file or folder is removed and the target is
 * as it was.
 *
 * How this version differs from a plain temp-and-rename:
 * - Every write is written fully (a short write, which is how a full disk first shows itself, is
 *   retried until the system call fails with ENOSPC), and before the rename the temp file's size on
 *   disk (fstat) is compared with the bytes handed to the writer: a mismatch is an error, never a
 *   torn file renamed into place. Bytes handed through the handle of a `writeFileAtomic` callback are
 *   counted by a thin wrapper around the handle, which also writes them fully.
 * - A failed write becomes one `WriteError` naming the file the caller asked for — `cannot write
 *   out.jsonl: no space left on device (ENOSPC)` — never the temporary name; inside
 *   `writeFolderAtomic` the temporary folder's name in any error is replaced by the target folder's.
 * - The temporary files and folders in flight are remembered, so a process that must exit at once
 *   (a failing stdout, see cli.ts) removes them first (`removeTemporaries`).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, promises as fsp, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CllamaError } from './errors.js';

/** A hidden temporary sibling path of `target`: `.<name>.<tag>-<pid>-<random>` in the same folder. */
export function tempSibling(target: string, tag = 'tmp'): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Temporary files and folders being written now (removed by `removeTemporaries` on a sudden exit). */
const inFlight = new Set<string>();

/** Remove every temporary file or folder still being written (synchronously: for a process about to exit). */
export function removeTemporaries(): void {
  for (const p of inFlight) rmSync(p, { recursive: true, force: true });
  inFlight.clear();
}

/** A write to `file` failed: the message names the file as the caller gave it and the reason in words. */
export class WriteError extends CllamaError {
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot write ${file}: ${reason}`, options);
  }
}

/**
 * A file-system error's reason for a person: `ENOSPC: no space left on device, write` becomes
 * `no space left on device (ENOSPC)`; anything else its message.
 */
export function fsErrorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e instanceof Error && typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) {
    const m = /^E[A-Z0-9]+: ([^,]+)/.exec(e.message);
    return `${(m ? m[1] : e.message).trim()} (${e.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error to throw when writing `target` (through `temp`) failed: a user-facing error passes
 * through; a raw file-system error about this output (or about no file in particular) becomes a
 * `WriteError` naming `target`; an error about some other file (an input read by a callback) and
 * programming errors pass through.
 */
function asWriteError(err: unknown, target: string, temp: string): unknown {
  if (err instanceof CllamaError || !(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  if (typeof e.code !== 'string' || !/^E[A-Z0-9]+$/.test(e.code) || e.syscall === 'read') return err;
  const about = [e.path, e.dest].filter((p): p is string => typeof p === 'string');
  const ours = about.length === 0 || about.some((p) => path.resolve(p) === path.resolve(temp) || path.resolve(p) === path.resolve(target));
  return ours ? new WriteError(target, fsErrorReason(err), { cause: err }) : err;
}

/** The check before a rename: the bytes on disk are the bytes handed over. */
function checkSize(target: string, onDisk: number, handed: number): void {
  if (onDisk !== handed) {
    throw new WriteError(target, `only ${onDisk} of ${handed} bytes reached the disk (is it full?); nothing was written`);
  }
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

/** Write all of `bytes` at `position` (null: at the handle's offset), retrying short writes. */
async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array, position: number | null): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position === null ? null : position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write (the write made no progress)'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

function toBytes(data: string | NodeJS.ArrayBufferView, encoding?: BufferEncoding): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * A file handle whose writes are written fully and whose expected size is modelled from what it is
 * handed: a write at the handle's offset grows the file to offset + n and moves the offset, a write
 * at a position grows it to position + n, a truncate sets it. Everything else goes to the real handle.
 * `expected` is undefined after a call whose byte count cannot be known (a stream handed to writeFile).
 */
function countingHandle(real: fsp.FileHandle): { handle: fsp.FileHandle; expected: () => number | undefined } {
  let offset = 0;
  let size: number | undefined = 0;
  const grow = (end: number) => {
    if (size !== undefined) size = Math.max(size, end);
  };
  const wrapper = {
    // write(buffer, offset?, length?, position?) | write(buffer, { offset, length, position }) | write(string, position?, encoding?)
    async write(data: string | NodeJS.ArrayBufferView, a?: unknown, b?: unknown, c?: unknown) {
      let bytes: Uint8Array;
      let position: number | null = null;
      if (typeof data === 'string') {
        bytes = toBytes(data, typeof b === 'string' ? (b as BufferEncoding) : undefined);
        if (typeof a === 'number') position = a;
      } else {
        const all = toBytes(data);
        const o = typeof a === 'object' && a !== null ? (a as { offset?: number; length?: number; position?: number | null }) : undefined;
        const from = (o ? o.offset : (a as number | undefined)) ?? 0;
        const length = (o ? o.length : (b as number | undefined)) ?? all.length - from;
        const pos = o ? o.position : (c as number | null | undefined);
        bytes = all.subarray(from, from + length);
        if (typeof pos === 'number' && pos >= 0) position = pos;
      }
      await writeAll(real, bytes, position);
      if (position === null) {
        offset += bytes.length;
        grow(offset);
      } else grow(position + bytes.length);
      return { bytesWritten: bytes.length, buffer: data };
    },
    async writev(buffers: NodeJS.ArrayBufferView[], position?: number | null) {
      const bytes = Buffer.concat(buffers.map((x) => toBytes(x)));
      await wrapper.write(bytes, 0, bytes.length, position ?? null);
      return { bytesWritten: bytes.length, buffers };
    },
    async writeFile(data: unknown, options?: unknown) {
      if (typeof data === 'string' || ArrayBuffer.isView(data)) {
        const enc = typeof options === 'string' ? options : (options as { encoding?: BufferEncoding } | undefined)?.encoding;
        await wrapper.write(toBytes(data as string | NodeJS.ArrayBufferView, (enc ?? undefined) as BufferEncoding | undefined));
        return;
      }
      size = undefined; // an iterable or stream: its length is not known here
      await real.writeFile(data as string, options as undefined);
    },
    async appendFile(data: unknown, options?: unknown) {
      await wrapper.writeFile(data, options);
    },
    async truncate(len = 0) {
      await real.truncate(len);
      size = len;
    },
  };
  const handle = new Proxy(real, {
    get(target, prop) {
      if (Object.hasOwn(wrapper, prop)) return wrapper[prop as keyof typeof wrapper];
      // writes that bypass the wrapper (a write stream, the raw descriptor) cannot be counted
      if (prop === 'fd' || prop === 'createWriteStream') size = undefined;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { handle, expected: () => size };
}

/** What to write: text, bytes, or a function that writes through the open handle of the temporary file. */
export type FileContent = string | Uint8Array | ((handle: fsp.FileHandle) => Promise<void>);

/**
 * Write a file atomically (temp sibling, write fully, fsync, size check, rename, fsync the folder).
 * A failure is a `WriteError` naming `target` (or the callback's own error); the target is as it was.
 */
export async function writeFileAtomic(target: string, content: FileContent): Promise<void> {
  await refuseFolderTarget(target);
  const tmp = tempSibling(target);
  inFlight.add(tmp);
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx');
    let expected: number | undefined;
    if (typeof content === 'function') {
      const counted = countingHandle(handle);
      await content(counted.handle);
      expected = counted.expected();
    } else {
      const bytes = toBytes(content);
      await writeAll(handle, bytes, null);
      expected = bytes.length;
    }
    await handle.sync();
    if (expected !== undefined) checkSize(target, (await handle.stat()).size, expected);
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw asWriteError(err, target, tmp);
  } finally {
    inFlight.delete(tmp);
  }
  await fsyncDir(path.dirname(target));
}

/** The synchronous form of `writeFileAtomic` for small state files (the same checks and errors). */
export function writeFileAtomicSync(target: string, content: string | Uint8Array): void {
  const tmp = tempSibling(target);
  inFlight.add(tmp);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const bytes = toBytes(content);
      writeFileSync(fd, bytes); // loops over short writes until done or an error
      fsyncSync(fd);
      checkSize(target, fstatSync(fd).size, bytes.length);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw asWriteError(err, target, tmp);
  } finally {
    inFlight.delete(tmp);
  }
}

/** Copy a file atomically (the copy is fsynced and its size checked against the source before it is renamed into place). */
export async function copyFileAtomic(source: string, target: string): Promise<void> {
  await refuseFolderTarget(target);
  const tmp = tempSibling(target);
  inFlight.add(tmp);
  try {
    const sourceSize = (await fsp.stat(source)).size;
    await fsp.copyFile(source, tmp);
    const handle = await fsp.open(tmp, 'r+');
    try {
      await handle.sync();
      checkSize(target, (await handle.stat()).size, sourceSize);
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw asWriteError(err, target, tmp);
  } finally {
    inFlight.delete(tmp);
  }
  await fsyncDir(path.dirname(target));
}

/**
 * A buffered, atomic file writer for large outputs (JSON lines, binary arrays): appends go to a temp
 * file; `commit()` fsyncs, checks the size and renames it over the target; `abort()` deletes it.
 * Failures are `WriteError`s naming the target.
 */
export class AtomicFileWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private written = 0;
  /** The file's size as handed over: appended bytes, or the end of a patch past them. */
  private end = 0;
  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private fh: fsp.FileHandle,
    private readonly flushBytes: number,
  ) {}

  static async create(target: string, opts: { flushBytes?: number } = {}): Promise<AtomicFileWriter> {
    await refuseFolderTarget(target);
    const tmp = tempSibling(target);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, 'wx');
    } catch (err) {
      throw asWriteError(err, target, tmp);
    }
    inFlight.add(tmp);
    return new AtomicFileWriter(target, tmp, fh, opts.flushBytes ?? 1 << 20);
  }

  /** Bytes appended so far (buffered or on disk). */
  get bytes(): number {
    return this.written + this.buffered;
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw asWriteError(err, this.target, this.tempPath);
    }
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
    await this.guard(() => writeAll(this.fh, data, position));
    this.end = Math.max(this.end, position + data.length);
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    await this.guard(() => writeAll(this.fh, all, this.written));
    this.written += all.length;
    this.end = Math.max(this.end, this.written);
  }

  /** Flush, fsync, check the size, close and rename into place. */
  async commit(): Promise<void> {
    await this.prepare();
    await this.publish();
  }

  /** Flush, fsync, check the size and close: the data is safe in the temp file, the target not yet touched. */
  async prepare(): Promise<void> {
    await this.flush();
    await this.guard(async () => {
      await this.fh.sync();
      checkSize(this.target, (await this.fh.stat()).size, this.end);
      await this.fh.close();
    });
  }

  /** Rename the prepared temp file over the target (several outputs: prepare them all, then publish). */
  async publish(): Promise<void> {
    await this.guard(() => fsp.rename(this.tempPath, this.target));
    inFlight.delete(this.tempPath);
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
    inFlight.delete(this.tempPath);
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
 * An error raised while a folder was built in `tmp`, told in terms of `dir`: the temporary folder's
 * name is replaced by the target's wherever it appears, and a raw file-system error becomes a
 * `WriteError` naming the file inside `dir` it was about (or `dir`).
 */
function inTargetFolder(err: unknown, tmp: string, dir: string): unknown {
  const rename = (s: string) => s.split(tmp).join(dir);
  if (err instanceof WriteError) return new WriteError(rename(err.file), rename(err.reason), { cause: err.cause ?? err });
  if (err instanceof CllamaError) {
    err.message = rename(err.message);
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && e.syscall !== 'read') {
    const about = typeof e.path === 'string' && path.resolve(e.path).startsWith(tmp) ? rename(path.resolve(e.path)) : undefined;
    if (about !== undefined || e.path === undefined) return new WriteError(about ?? dir, fsErrorReason(err), { cause: err });
  }
  return err;
}

/**
 * Build a folder atomically: `fill` writes into a fresh temporary sibling folder (or is a map of file
 * names to contents, each written fully, fsynced and size-checked), which is fsynced and
 * renamed to `dir`. An existing empty `dir` is replaced; an existing non-empty one is refused with
 * `FolderExistsError` unless `force` (then the old folder is moved aside and deleted only after the
 * new one is in place). The parent folders are created. Errors name `dir` (or the file in it), never
 * the temporary folder.
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
    throw new CllamaError(`cannot create ${parent}: ${fsErrorReason(err)}`, { cause: err });
  }
  const tmp = tempSibling(target);
  inFlight.add(tmp);
  try {
    try {
      await fsp.mkdir(tmp);
      if (typeof fill === 'function') await fill(tmp);
      else for (const [name, content] of Object.entries(fill)) await writeFileAtomic(path.join(tmp, name), content);
      await fsyncDir(tmp);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw inTargetFolder(err, tmp, dir);
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
      throw inTargetFolder(err, tmp, dir);
    }
    await fsyncDir(parent);
    if (aside) await fsp.rm(aside, { recursive: true, force: true });
  } finally {
    inFlight.delete(tmp);
  }
}
