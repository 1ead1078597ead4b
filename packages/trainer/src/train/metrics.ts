/**
 * Metrics as JSON lines (`metrics.jsonl` in the output dir): one object per logging / eval event,
 * the same entries as trainer_state.json's log history. On resume the file is rewritten from the
 * checkpoint's history (atomically), so lines logged after that checkpoint by the killed run vanish
 * and the file always matches the run as resumed.
 *
 * Reading streams the file (`forEachMetric`): one line at a time, each at most MAX_METRIC_LINE_BYTES,
 * so a reader that keeps O(1) per line (the plot) runs in bounded memory whatever the file's size.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@cllama/core';
import type { LogEntry } from './checkpoint.js';
import { TrainerError } from '../errors.js';

export const METRICS_FILE = 'metrics.jsonl';

export class MetricsLog {
  readonly file: string;

  constructor(outputDir: string) {
    this.file = path.join(outputDir, METRICS_FILE);
  }

  /** Replaces the file with `history` (start of a run or resume). */
  async reset(history: readonly LogEntry[]): Promise<void> {
    await writeFileAtomic(this.file, history.map((e) => `${JSON.stringify(e)}\n`).join(''));
  }

  /**
   * Appends one entry: the whole line, or — when a write fails part-way (a full disk first shows as a
   * short write) — nothing: the file is cut back to its previous size and the error thrown.
   */
  async append(entry: LogEntry): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(entry)}\n`);
    const handle = await fs.open(this.file, 'a');
    let size: number | undefined;
    try {
      size = (await handle.stat()).size;
      for (let done = 0; done < line.length; ) {
        const { bytesWritten } = await handle.write(line, done, line.length - done);
        if (bytesWritten <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        done += bytesWritten;
      }
    } catch (err) {
      if (size !== undefined) await handle.truncate(size).catch(() => undefined);
      throw err;
    } finally {
      await handle.close();
    }
  }
}

/** A metric line is a small JSON object; a longer line is not one of ours (and is not buffered further). */
export const MAX_METRIC_LINE_BYTES = 1 << 20;

export class MetricsFileError extends TrainerError {
  override name = 'MetricsFileError';
}

/**
 * Calls `fn` with every entry of a metrics.jsonl file, streaming (blank lines skipped). A line that is not
 * a JSON object, or longer than MAX_METRIC_LINE_BYTES, is a MetricsFileError naming the file and line.
 */
export async function forEachMetric(file: string, fn: (entry: LogEntry, line: number) => void): Promise<void> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let lineNo = 0;
  const tooLong = () => new MetricsFileError(`${file}:${lineNo + 1}: line longer than ${MAX_METRIC_LINE_BYTES} bytes; not a metrics line`);
  const handle = (bytes: Buffer) => {
    lineNo += 1;
    const text = bytes.toString('utf8').trim();
    if (text === '') return;
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch (err) {
      throw new MetricsFileError(`${file}:${lineNo}: not JSON (${(err as Error).message})`);
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new MetricsFileError(`${file}:${lineNo}: not a JSON object`);
    fn(entry as LogEntry, lineNo);
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      partBytes += piece.length;
      if (partBytes > MAX_METRIC_LINE_BYTES) throw tooLong();
      if (nl < 0) {
        if (piece.length > 0) parts.push(piece);
        break;
      }
      handle(parts.length > 0 ? Buffer.concat([...parts, piece]) : piece);
      parts = [];
      partBytes = 0;
      start = nl + 1;
    }
  }
  if (partBytes > 0) handle(Buffer.concat(parts));
}

/** Every entry of a metrics.jsonl file, as an array (see forEachMetric for a streaming read). */
export async function readMetrics(file: string): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  await forEachMetric(file, (e) => out.push(e));
  return out;
}
