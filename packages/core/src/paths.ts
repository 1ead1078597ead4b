/**
 * Paths: where a path really points, and what an input path may be.
 *
 * Where a path really points, for "is this output one of the inputs?" checks in every CLI that writes:
 * symlinks and `.`/`..` resolved, and a path that does not exist yet (a new output) resolved through
 * its folder, so `out.jsonl`, `./x/../out.jsonl` and a symlinked folder's `out.jsonl` all compare equal.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CllamaError } from './errors.js';

/** The real path of `p`, or of its folder + its name when `p` does not exist yet. */
export async function realTarget(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fsp.realpath(abs);
  } catch {
    const dir = await fsp.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
    return path.join(dir, path.basename(abs));
  }
}

/**
 * Refuses an input that is neither a regular file nor a folder — a FIFO, a socket, a device — before
 * it is opened: opening or reading a FIFO nobody writes to blocks forever, and a device never ends.
 * Uses stat (which does not block); symlinks are followed. A path that does not exist passes, so the
 * caller's own "not found" message stays.
 */
export async function refuseSpecialFile(file: string): Promise<void> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (st === undefined || st.isFile() || st.isDirectory()) return;
  const what = st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : st.isCharacterDevice() ? 'a character device' : 'a block device';
  throw new CllamaError(`${file} is ${what}, not a regular file; give a regular file (inputs are read more than once or at offsets)`);
}
