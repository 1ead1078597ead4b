/**
 * The crawl's files, all append-only JSON lines next to --out:
 *   <out>                 accepted items {instruction, input, output}
 *   <out>.rejects.jsonl   items (or reply fragments) not kept, with the reason
 *   <out>.failures.jsonl  requests that kept failing after all retries
 *   <out>.journal.jsonl   one line per finished request: index, attempts, usage, counts
 *   <out>.lock            pid of the crawler using these files
 * Each commit appends to every file and fsyncs it before the commit's promise resolves; items are
 * written (and synced) first, so after a kill the output never claims less than the journal says.
 * A process killed mid-write can leave a torn last line: on open it is cut off (the file is truncated
 * back to the last complete line) and the torn text is recorded in the rejects file.
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { LockedError, OutputFileError } from './errors.js';
import type { Item } from './parse.js';

export interface RejectRecord {
  request: number;
  reason: string;
  item?: Item;
  raw?: string;
  similarTo?: string;
  score?: number;
}

export interface FailureRecord {
  request: number;
  prompt: string;
  attempts: Array<{ attempt: number; kind: string; status?: number; message: string }>;
  time: string;
}

export interface JournalRecord {
  request: number;
  attempts: number;
  promptTokens: number;
  completionTokens: number;
  finishReason: string | null;
  parsed: number;
  accepted: number;
  rejected: number;
  time: string;
}

export interface TornTail {
  file: string;
  bytes: number;
  text: string;
}

export function sideFiles(out: string) {
  return {
    out,
    rejects: `${out}.rejects.jsonl`,
    failures: `${out}.failures.jsonl`,
    journal: `${out}.journal.jsonl`,
    lock: `${out}.lock`,
  };
}

/**
 * Reads a JSON-lines file. A final line without '\n' is torn (a write cut short): the file is
 * truncated to the last complete line and the torn bytes are returned. A malformed complete line is
 * corruption the crawler did not cause, and is an error.
 */
export async function readJsonLines<T>(path: string, repair: boolean): Promise<{ records: T[]; torn?: TornTail }> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [] };
    throw e;
  }
  const lastNl = buf.lastIndexOf(0x0a);
  const completeLen = lastNl + 1;
  const records: T[] = [];
  const text = buf.subarray(0, completeLen).toString('utf8');
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch {
      throw new OutputFileError(
        `${path}: line ${lineNo} is not valid JSON (${line.slice(0, 60)}…). This file is written only by the crawler; remove or fix that line, or use another --out.`,
      );
    }
  }
  let torn: TornTail | undefined;
  if (completeLen < buf.length) {
    torn = { file: path, bytes: buf.length - completeLen, text: buf.subarray(completeLen).toString('utf8') };
    if (repair) {
      const fh = await fsp.open(path, 'r+');
      try {
        await fh.truncate(completeLen);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
  return { records, torn };
}

function isItem(v: unknown): v is Item {
  const o = v as Record<string, unknown>;
  return !!o && typeof o.instruction === 'string' && typeof o.input === 'string' && typeof o.output === 'string';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireLock(path: string): Promise<void> {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await fsp.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.sync();
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fsp.readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
        throw new LockedError(`another crawler (pid ${pid}) is writing to ${path.replace(/\.lock$/, '')}; stop it or choose another --out`);
      }
      await fsp.rm(path, { force: true }); // stale lock from a killed process
    }
  }
  throw new LockedError(`could not take the lock ${path}; remove it if no crawler is running`);
}

export interface OpenedStore {
  store: OutputStore;
  items: Item[];
  journal: JournalRecord[];
  failures: FailureRecord[];
  torn: TornTail[];
}

export class OutputStore {
  private closed = false;
  private constructor(
    readonly paths: ReturnType<typeof sideFiles>,
    private readonly handles: { out: FileHandle; rejects: FileHandle; failures: FileHandle; journal: FileHandle },
  ) {}

  /** Locks, repairs torn tails, reads what exists, and opens everything for appending. */
  static async open(out: string): Promise<OpenedStore> {
    const paths = sideFiles(out);
    await acquireLock(paths.lock);
    try {
      const torn: TornTail[] = [];
      const outRead = await readJsonLines<unknown>(paths.out, true);
      if (outRead.torn) torn.push(outRead.torn);
      const items: Item[] = [];
      outRead.records.forEach((r, i) => {
        if (!isItem(r)) throw new OutputFileError(`${out}: line ${i + 1} is not an {instruction, input, output} item; is --out the right file?`);
        items.push({ instruction: r.instruction, input: r.input, output: r.output });
      });
      const journalRead = await readJsonLines<JournalRecord>(paths.journal, true);
      const failuresRead = await readJsonLines<FailureRecord>(paths.failures, true);
      const rejectsRead = await readJsonLines<RejectRecord>(paths.rejects, true);
      for (const r of [journalRead, failuresRead, rejectsRead]) if (r.torn) torn.push(r.torn);
      const open = (p: string) => fsp.open(p, 'a');
      const handles = {
        out: await open(paths.out),
        rejects: await open(paths.rejects),
        failures: await open(paths.failures),
        journal: await open(paths.journal),
      };
      const store = new OutputStore(paths, handles);
      // account for a torn output line: its text goes to the rejects file
      const tornOut = torn.filter((t) => t.file === paths.out);
      if (tornOut.length) {
        await store.append({
          rejects: tornOut.map((t) => JSON.stringify({ request: -1, reason: 'torn-line-on-resume', raw: t.text }) + '\n'),
        });
      }
      return { store, items, journal: journalRead.records, failures: failuresRead.records, torn };
    } catch (e) {
      await fsp.rm(paths.lock, { force: true });
      throw e;
    }
  }

  /**
   * Appends pre-serialized lines (each ending in '\n') and fsyncs each touched file. Items first,
   * so a kill between files loses bookkeeping, never data. One write call per file.
   */
  async append(lines: { items?: string[]; rejects?: string[]; failures?: string[]; journal?: string[] }): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    const order: Array<[keyof typeof lines, FileHandle]> = [
      ['items', this.handles.out],
      ['failures', this.handles.failures],
      ['journal', this.handles.journal],
      ['rejects', this.handles.rejects],
    ];
    for (const [key, fh] of order) {
      const l = lines[key];
      if (!l || l.length === 0) continue;
      await fh.appendFile(l.join(''));
      await fh.sync();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fh of Object.values(this.handles)) await fh.close();
    await fsp.rm(this.paths.lock, { force: true });
  }
}
