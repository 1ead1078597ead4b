/**
 * The crawl's files, all append-only JSON lines next to --out:
 *   <out>                 accepted items {instruction, input, output}
 *   <out>.rejects.jsonl   items (or reply fragments) not kept, with the reason
 *   <out>.failures.jsonl  requests that kept failing after all retries
 *   <out>.journal.jsonl   one line per finished request: index, attempts, usage, counts
 *   <out>.lock            pid of the crawler using these files
 * Each commit appends to every file and fsyncs it before the commit's promise resolves; items are
 * written (and synced) first, so after a kill the output never claims less than the journal says.
 * A write or fsync that fails (a full disk) cuts that file back to its size before the append, so no
 * torn line is left, and fails the store with one message naming the file: later appends are refused,
 * so the files hold exactly the groups committed before the failure, and a resume continues from there.
 * A process killed mid-write can leave a torn last line: on open it is cut off (the file is truncated
 * back to the last complete line) and the torn text is recorded in the rejects file. Only what can be a
 * torn line of ours is cut: a last line that is complete JSON and only lacks its '\n' is read as a
 * record (and the '\n' added), and a last line that is not the start of one of our records (a one-line
 * JSON array, plain text: a file the crawler did not write) is refused, the file left untouched.
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fsErrorReason, WriteError } from '@cllama/core';
import { ConfigError, LockedError, OutputFileError } from './errors.js';
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
 * One line naming the file that could not be written, what became of it and what to do: core's
 * `WriteError` (`cannot write <file>: no space left on device (ENOSPC); …`) with the crawler's advice,
 * which ends in resuming — the same command continues from what the files hold.
 */
function writeError(path: string, err: unknown, what: string): WriteError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const todo = code === 'ENOSPC' || code === 'EDQUOT' ? 'free some space' : 'fix that';
  return new WriteError(path, `${fsErrorReason(err)}; ${what} — ${todo} and run the same command again to continue`, { cause: err });
}

/**
 * Streams a JSON-lines file line by line in 1 MiB chunks (an output of a million items is larger than
 * the biggest string V8 allows, so it is never read whole). A final line without '\n' is torn (a write
 * cut short): with `repair` the file is truncated to the last complete line, and the torn bytes are
 * returned. A malformed complete line is corruption the crawler did not cause, and is an error.
 */
export async function readJsonLines(
  path: string,
  repair: boolean,
  onRecord: (record: unknown, lineNo: number) => void,
  /** how every line this file holds begins (`{"instruction"`); a torn tail must be a prefix of it or begin with it */
  lineStart = '{"',
): Promise<{ count: number; torn?: TornTail }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, repair ? 'r+' : 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { count: 0 };
    throw e;
  }
  let count = 0;
  let torn: TornTail | undefined;
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(1 << 20);
    let carry: Buffer = Buffer.alloc(0);
    let pos = 0;
    let lineNo = 0;
    let completeEnd = 0; // file offset just past the last '\n'
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let start = 0;
      for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const line = (carry.length ? Buffer.concat([carry, chunk.subarray(start, nl)]) : chunk.subarray(start, nl)).toString('utf8');
        carry = Buffer.alloc(0);
        lineNo++;
        start = nl + 1;
        completeEnd = pos + nl + 1;
        if (line === '') continue;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          throw new OutputFileError(
            `${path}: line ${lineNo} is not valid JSON (${line.slice(0, 60)}…). This file is written only by the crawler; remove or fix that line, or use another --out.`,
          );
        }
        onRecord(record, lineNo);
        count++;
      }
      carry = Buffer.concat([carry, chunk.subarray(start)]); // copies: buf is reused
      pos += bytesRead;
    }
    if (completeEnd < size) {
      const text = carry.toString('utf8');
      let record: unknown;
      let complete = false;
      try {
        record = JSON.parse(text);
        complete = true;
      } catch {
        complete = false;
      }
      if (complete) {
        // a whole record whose '\n' never made it: read it like the others (onRecord refuses a foreign one)
        onRecord(record, lineNo + 1);
        count++;
        if (repair) {
          try {
            await fh.write('\n', size);
            await fh.sync();
          } catch (e) {
            await fh.truncate(size).catch(() => undefined);
            throw writeError(path, e, 'it was left as it was');
          }
        }
        return { count };
      }
      const head = text.replace(/^\{\s*/, '{');
      if (!(head.startsWith(lineStart) || lineStart.startsWith(head))) {
        throw new OutputFileError(
          `${path} is not a crawler JSON-lines file (its last line starts ${JSON.stringify(text.slice(0, 40))}); it was left untouched: choose another --out, or convert it first`,
        );
      }
      torn = { file: path, bytes: size - completeEnd, text };
      if (repair) {
        try {
          await fh.truncate(completeEnd);
          await fh.sync();
        } catch (e) {
          throw writeError(path, e, 'its torn last line could not be cut');
        }
      }
    }
  } finally {
    await fh.close();
  }
  return { count, torn };
}

/** every item line is JSON.stringify({instruction, input, output}); every side-file line starts with "request" */
const ITEM_LINE_START = '{"instruction"';
const SIDE_LINE_START = '{"request"';

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
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(path, e, 'no lock was taken and nothing was written');
      const pid = Number((await fsp.readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
        throw new LockedError(`another crawler (pid ${pid}) is writing to ${path.replace(/\.lock$/, '')}; stop it or choose another --out`);
      }
      await fsp.rm(path, { force: true }); // stale lock from a killed process
      continue;
    }
    try {
      await fh.writeFile(`${process.pid}\n`);
      await fh.sync();
      await fh.close();
      return;
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(path, { force: true });
      throw writeError(path, e, 'the lock was removed and nothing was written');
    }
  }
  throw new LockedError(`could not take the lock ${path}; remove it if no crawler is running`);
}

export interface OpenedStore {
  store: OutputStore;
  /** items already in the output */
  itemCount: number;
  /** token usage and highest request index recorded by earlier runs */
  previous: { promptTokens: number; completionTokens: number; maxRequestIndex: number; requests: number; failures: number };
  torn: TornTail[];
}

type Handles = { out: FileHandle; rejects: FileHandle; failures: FileHandle; journal: FileHandle };

export class OutputStore {
  private closed = false;
  /** the first write that failed: every later append is refused with it */
  private failed: WriteError | undefined;
  private constructor(
    readonly paths: ReturnType<typeof sideFiles>,
    private readonly handles: Handles,
    /** each file's size after the last good append (the crawler is its only writer: it holds the lock) */
    private readonly sizes: Record<keyof Handles, number>,
  ) {}

  /**
   * Locks, repairs torn tails, streams what exists (each kept item to `onItem`, in file order), and
   * opens everything for appending.
   */
  static async open(out: string, onItem: (item: Item) => void = () => {}): Promise<OpenedStore> {
    const paths = sideFiles(out);
    const dir = dirname(resolve(out));
    if (
      !(await fsp.stat(dir).then(
        (st) => st.isDirectory(),
        () => false,
      ))
    ) {
      throw new ConfigError(`the folder of --out (${dir}) does not exist; create it first`);
    }
    await acquireLock(paths.lock);
    try {
      const torn: TornTail[] = [];
      const outRead = await readJsonLines(
        paths.out,
        true,
        (r, line) => {
          if (!isItem(r))
            throw new OutputFileError(`${out}: line ${line} is not an {instruction, input, output} item; is --out the right file? (it was left untouched)`);
          onItem({ instruction: r.instruction, input: r.input, output: r.output });
        },
        ITEM_LINE_START,
      );
      if (outRead.torn) torn.push(outRead.torn);
      const previous = { promptTokens: 0, completionTokens: 0, maxRequestIndex: -1, requests: 0, failures: 0 };
      const journalRead = await readJsonLines(
        paths.journal,
        true,
        (r) => {
          const j = r as Partial<JournalRecord>;
          previous.promptTokens += Number(j.promptTokens) || 0;
          previous.completionTokens += Number(j.completionTokens) || 0;
          if (typeof j.request === 'number') previous.maxRequestIndex = Math.max(previous.maxRequestIndex, j.request);
        },
        SIDE_LINE_START,
      );
      previous.requests = journalRead.count;
      const failuresRead = await readJsonLines(
        paths.failures,
        true,
        (r) => {
          const f = r as Partial<FailureRecord>;
          if (typeof f.request === 'number') previous.maxRequestIndex = Math.max(previous.maxRequestIndex, f.request);
        },
        SIDE_LINE_START,
      );
      previous.failures = failuresRead.count;
      const rejectsRead = await readJsonLines(paths.rejects, true, () => {}, SIDE_LINE_START);
      for (const r of [journalRead, failuresRead, rejectsRead]) if (r.torn) torn.push(r.torn);
      const open = (p: string) => fsp.open(p, 'a');
      const handles: Handles = {
        out: await open(paths.out),
        rejects: await open(paths.rejects),
        failures: await open(paths.failures),
        journal: await open(paths.journal),
      };
      const sizes = { out: 0, rejects: 0, failures: 0, journal: 0 };
      for (const k of Object.keys(handles) as Array<keyof Handles>) sizes[k] = (await handles[k].stat()).size;
      const store = new OutputStore(paths, handles, sizes);
      // account for a torn output line: its text goes to the rejects file
      const tornOut = torn.filter((t) => t.file === paths.out);
      if (tornOut.length) {
        await store.append({
          rejects: tornOut.map((t) => JSON.stringify({ request: -1, reason: 'torn-line-on-resume', raw: t.text }) + '\n'),
        });
      }
      return { store, itemCount: outRead.count, previous, torn };
    } catch (e) {
      await fsp.rm(paths.lock, { force: true });
      throw e;
    }
  }

  /**
   * Appends pre-serialized lines (each ending in '\n') and fsyncs each touched file. Items first,
   * so a kill between files loses bookkeeping, never data. One write call per file. A failed write or
   * fsync cuts the file back to where this append began and fails the store (see the header).
   */
  async append(lines: { items?: string[]; rejects?: string[]; failures?: string[]; journal?: string[] }): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    if (this.failed) throw this.failed;
    const order: Array<[keyof typeof lines, keyof Handles]> = [
      ['items', 'out'],
      ['failures', 'failures'],
      ['journal', 'journal'],
      ['rejects', 'rejects'],
    ];
    for (const [key, file] of order) {
      const l = lines[key];
      if (!l || l.length === 0) continue;
      const fh = this.handles[file];
      const data = Buffer.from(l.join(''), 'utf8');
      try {
        await fh.appendFile(data);
        await fh.sync();
      } catch (e) {
        const cut = await fh.truncate(this.sizes[file]).then(
          () => fh.sync().then(() => true),
          () => false,
        );
        this.failed = writeError(
          this.paths[file],
          e,
          cut ? 'it was cut back to its last complete line, everything written before is kept' : 'its torn end is cut by the next run',
        );
        throw this.failed;
      }
      this.sizes[file] += data.length;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fh of Object.values(this.handles)) await fh.close();
    await fsp.rm(this.paths.lock, { force: true });
  }
}
