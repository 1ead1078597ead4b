/**
 * Where a path really points, for "is this output one of the inputs?" checks in every CLI that writes:
 * symlinks and `.`/`..` resolved, and a path that does not exist yet (a new output) resolved through
 * its folder, so `out.jsonl`, `./x/../out.jsonl` and a symlinked folder's `out.jsonl` all compare equal.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

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
