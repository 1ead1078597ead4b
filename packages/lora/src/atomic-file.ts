/**
 * Exact reads and writes through a file handle (short reads and writes are retried). The atomic
 * file and folder writes themselves live in @cllama/core.
 */
import type { promises as fs } from 'node:fs';

/** Write all of `bytes` at the handle's current position (handles short writes). */
export async function writeFully(handle: fs.FileHandle, bytes: Uint8Array, position?: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position === undefined ? null : position + written);
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    written += bytesWritten;
  }
}

/** Read exactly `length` bytes at `position` into `target` (handles short reads); false on EOF. */
export async function readFully(handle: fs.FileHandle, target: Uint8Array, position: number): Promise<boolean> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}
