/**
 * Metrics as JSON lines (`metrics.jsonl` in the output dir): one object per logging / eval event,
 * the same entries as trainer_state.json's log history. On resume the file is rewritten from the
 * checkpoint's history (atomically), so lines logged after that checkpoint by the killed run vanish
 * and the file always matches the run as resumed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@cllama/core';
import type { LogEntry } from './checkpoint.js';

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

  /** Appends one entry as a single write (a line is either whole or absent after a crash, short of a torn sector). */
  async append(entry: LogEntry): Promise<void> {
    await fs.appendFile(this.file, `${JSON.stringify(entry)}\n`);
  }
}

export async function readMetrics(file: string): Promise<LogEntry[]> {
  const text = await fs.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as LogEntry);
}
