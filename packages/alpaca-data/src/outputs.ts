/**
 * Output guards shared by the commands that write: nothing that exists is replaced without --force, and
 * an output that is one of the inputs (same real path, whatever the spelling: ./a, a, a symlink to it)
 * is refused always — the command would read what it is replacing. Checked before any work is done.
 */
import { promises as fsp } from 'node:fs';
import { realTarget } from '@cllama/core';
import { AlpacaDataError } from './errors.js';

/** Refuses an output that is also an input (always), or that exists (unless `force`). */
/** `folder`: the output is a folder (tokenize), so an existing folder there is a dataset to replace, not a mistake. */
export async function checkOutput(out: string, inputs: readonly string[], opts: { force?: boolean; flag?: string; folder?: boolean } = {}): Promise<void> {
  const flag = opts.flag ?? '--out';
  const target = await realTarget(out);
  for (const input of inputs) {
    if ((await realTarget(input)) === target) {
      throw new AlpacaDataError(`${flag} ${out} is also an input (${input}); write to another file`);
    }
  }
  const stat = await fsp.stat(out).catch(() => undefined);
  if (stat?.isDirectory() && !opts.folder) throw new AlpacaDataError(`${flag} ${out} is a folder; give a file path`);
  if (opts.force) return;
  const exists =
    stat !== undefined ||
    (await fsp.lstat(out).then(
      () => true,
      () => false,
    ));
  if (exists) throw new AlpacaDataError(`${flag} ${out} exists; pass --force to replace it, or choose another path`);
}
