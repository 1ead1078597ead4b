/**
 * A training run's writes that fail (a full disk, a quota, a read-only remount) end in one line that
 * names the output and says what is kept and what to do:
 *
 *   cannot write out/checkpoint-4/optimizer.safetensors: no space left on device (ENOSPC); the last good
 *   checkpoint, out/checkpoint-2, is kept: free space and run the same command again to resume from it
 *
 * `writingOutput(output, then, write)` runs one write of the trainer's outputs (checkpoint folder,
 * final model or adapter, metrics.jsonl, training_plot.svg, tokenized cache, lock file). A raw
 * file-system error (which for write(2) names no file at all) becomes a TrainWriteError naming the
 * output — or the file inside it, when the error names one, with the hidden temporary names of atomic
 * writes (`.name.tmp-<pid>-<hex>`, the final output's staging folder) mapped back to the names the user will see. An
 * error that already says `cannot write <file>` (@cllama/core's WriteError) keeps its words, the same
 * mapping applied, and gets the `then` clause. Other errors pass through unchanged. The reason
 * (`no space left on device (ENOSPC)`) is core's `fsErrorReason`, worded as core's WriteError words it.
 */
import * as path from 'node:path';
import { CllamaError, fsErrorReason } from '@cllama/core';
import { TrainerError } from '../errors.js';

export class TrainWriteError extends TrainerError {
  override name = 'TrainWriteError';
}

/** A hidden temporary name of an atomic write: `.name.tmp-<pid>-<hex>` (core's), `.name.deleting-<pid>-<ms>` (rotation). */
const TEMP_COMPONENT = /^\.(.+)\.(?:tmp|old|deleting)-\d+-[0-9a-f]+$/;
/** The folder the final output is staged in (session.ts), which stands for the output dir itself. */
export const FINAL_STAGING_PREFIX = '.cllama-final.tmp-';

/** The user-visible path of a path that may run through temporary folders or files of atomic writes. */
export function visiblePath(p: string): string {
  const parts = p.split(path.sep).map((c) => {
    let name = c;
    for (let m = TEMP_COMPONENT.exec(name); m; m = TEMP_COMPONENT.exec(name)) name = m[1]!;
    return name.startsWith(FINAL_STAGING_PREFIX) ? '' : name;
  });
  return parts.filter((c, i) => c !== '' || i === 0).join(path.sep);
}

/** Replaces every temporary path in a message by its visible form. */
function withVisiblePaths(message: string): string {
  return message.replace(/(\/[^\s:;,'"()]+)/g, (p) => visiblePath(p));
}

export function outputWriteError(err: unknown, output: string, then: string): unknown {
  if (err instanceof TrainWriteError) return err; // named by an inner write already
  if (err instanceof CllamaError) {
    if (!/^cannot write /.test(err.message)) return err;
    return new TrainWriteError(`${withVisiblePaths(err.message)}; ${then}`, { cause: err });
  }
  const e = err as NodeJS.ErrnoException & { dest?: string };
  if (!(err instanceof Error) || typeof e.code !== 'string' || !/^E[A-Z0-9]+$/.test(e.code) || e.syscall === 'read') return err;
  const about = e.dest ?? e.path; // a copy names its source in path, the file it writes in dest
  if (typeof about !== 'string') return new TrainWriteError(`cannot write ${output}: ${fsErrorReason(e)}; ${then}`, { cause: err });
  const named = visiblePath(path.resolve(about));
  const root = path.resolve(output);
  // an error about a file outside the output (an input being read) is not a write error of this output
  if (named !== root && !named.startsWith(root + path.sep)) return err;
  return new TrainWriteError(`cannot write ${named}: ${fsErrorReason(e)}; ${then}`, { cause: err });
}

/** Runs a write of `output`; a failure becomes one line naming it (see the header). */
export async function writingOutput<T>(output: string, then: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw outputWriteError(err, output, then);
  }
}
