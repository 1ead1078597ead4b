import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** A sibling temp path in the same folder as `target`, so that the final rename stays on one file system. */
export function tempSibling(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a folder so that a rename inside it survives a crash (a no-op where folders cannot be opened). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  } finally {
    await fh?.close();
  }
}

/**
 * Write a file atomically: temp file in the same folder, fsync, rename over the target.
 * On any error the temp file is removed and the target is untouched.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempSibling(target);
  try {
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
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
