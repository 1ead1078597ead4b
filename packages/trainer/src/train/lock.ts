/**
 * One training run per output folder: a lock file `<output-dir>/.cllama-train.lock`.
 *
 * Two runs into one --output-dir would resume from each other's checkpoints with other flags,
 * interleave metrics.jsonl and race on the checkpoint renames. The lock works like the lock files
 * users know (git's index.lock, pip's, a pidfile):
 *
 *   - taken by creating the file with O_CREAT | O_EXCL (`wx`) — atomic, also on NFS v3+ — holding
 *     JSON {pid, host, started, token, command}, fsynced;
 *   - a lock whose host is this host and whose pid is not running (the run was SIGKILLed or the machine
 *     crashed) is stale: it is removed — after re-reading it to check it is still that same lock — and
 *     taken again; a lock of a live pid, or of another host (whose pids cannot be checked from here), is
 *     refused in one line naming the lock file, the pid, host and start time, and what to do;
 *   - released when the run ends, normally or by an error, on SIGINT / SIGTERM / SIGHUP (removed, then
 *     the signal is re-raised so the process still ends the way the signal says), and on process.exit();
 *     it is removed only while it still holds this run's token, so a run never deletes another's lock.
 *
 * What it does not catch: a pid reused by an unrelated process after a crash keeps the lock until the
 * file is removed by hand (the message says so); between the re-read and the removal of a stale lock,
 * another starting run could take it (a window of microseconds, both runs having found it stale).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, unlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TrainerError } from '../errors.js';

export const LOCK_FILE = '.cllama-train.lock';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  token: string;
  command: string[];
}

export class OutputDirLockedError extends TrainerError {
  override name = 'OutputDirLockedError';
}

/** True when `pid` is a running process on this host (EPERM: it runs, under another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.token === 'string') return v as LockInfo;
  } catch {
    // torn or foreign content
  }
  return undefined;
}

/** A lock file with no readable content is treated as stale once it is this old (its writer died between create and write). */
const UNREADABLE_STALE_MS = 10_000;

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class OutputDirLock {
  private released = false;
  private readonly onExit = () => this.releaseSync();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.releaseSync();
    // the default action of the signal (end the process with it), as if no handler had been installed
    process.kill(process.pid, signal);
  };

  private constructor(
    readonly file: string,
    readonly info: LockInfo,
  ) {
    process.once('exit', this.onExit);
    for (const s of SIGNALS) process.once(s, this.onSignal);
  }

  /**
   * Takes the lock of `outputDir` (which must exist), removing a stale one; throws OutputDirLockedError
   * when another run holds it.
   */
  static async acquire(outputDir: string): Promise<OutputDirLock> {
    const file = path.join(outputDir, LOCK_FILE);
    const info: LockInfo = {
      pid: process.pid,
      host: os.hostname(),
      started: new Date().toISOString(),
      token: randomBytes(8).toString('hex'),
      command: process.argv.slice(1),
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      let handle: fs.FileHandle | undefined;
      try {
        handle = await fs.open(file, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (handle) {
        try {
          await handle.writeFile(`${JSON.stringify(info)}\n`);
          await handle.sync();
        } catch (err) {
          // (a full disk) no half-written lock left behind for the next run to wait on
          await handle.close().catch(() => undefined);
          handle = undefined;
          await fs.rm(file, { force: true });
          throw err;
        } finally {
          await handle?.close();
        }
        return new OutputDirLock(file, info);
      }
      await OutputDirLock.refuseOrClear(file, outputDir);
    }
    throw new OutputDirLockedError(`cannot take the lock ${file}: other runs keep taking it; retry when they have finished`);
  }

  /** Throws when the existing lock is held; removes it when stale (then the caller retries). */
  private static async refuseOrClear(file: string, outputDir: string): Promise<void> {
    let text: string;
    let mtimeMs: number;
    try {
      text = await fs.readFile(file, 'utf8');
      mtimeMs = (await fs.stat(file)).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // released meanwhile: retry
      throw err;
    }
    const held = parseLock(text);
    const here = os.hostname();
    if (!held) {
      if (Date.now() - mtimeMs < UNREADABLE_STALE_MS) {
        throw new OutputDirLockedError(
          `--output-dir ${outputDir} is being locked by another cllama-train (the lock file ${file} is being written): wait for that run to finish, or choose another --output-dir`,
        );
      }
    } else if (held.host !== here || processAlive(held.pid)) {
      const where = held.host === here ? `pid ${held.pid}` : `pid ${held.pid} on host ${held.host}`;
      const gone = held.host === here ? '' : ` (if that run is gone, remove ${file})`;
      throw new OutputDirLockedError(
        `--output-dir ${outputDir} is in use by another cllama-train run (${where}, started ${held.started}; lock file ${file}): wait for it to finish${gone}, or choose another --output-dir`,
      );
    }
    // stale: its process is gone. Remove it only if it is still the same lock (another run may have cleared and retaken it).
    const again = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (again === text) await fs.rm(file, { force: true });
  }

  /** Removes the lock if it is still this run's. */
  releaseSync(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    for (const s of SIGNALS) process.removeListener(s, this.onSignal);
    try {
      if (parseLock(readFileSync(this.file, 'utf8'))?.token === this.info.token) unlinkSync(this.file);
    } catch {
      // already gone (or the folder was removed with it)
    }
  }

  async release(): Promise<void> {
    this.releaseSync();
  }
}
