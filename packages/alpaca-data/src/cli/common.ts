/** What the cllama-data subcommands share: per-record warnings, the --max-record-bytes flag, stdout writes. */
import { UsageError, parseWholeNumber, type StringArg } from '@cllama/core';
import type { RecordError } from '../errors.js';
import { DEFAULT_MAX_RECORD_BYTES } from '../readers.js';

const MAX_WARNINGS = 5;

/** Per-record warnings: the first few on stderr (none with --quiet), then a count. */
export function warner(quiet: boolean) {
  let n = 0;
  return {
    warn(e: RecordError) {
      n++;
      if (!quiet && n <= MAX_WARNINGS) process.stderr.write(`warning: ${e.message}\n`);
    },
    summary(what: string) {
      if (n > MAX_WARNINGS && !quiet) process.stderr.write(`warning: ${n - MAX_WARNINGS} more skipped ${what} not shown\n`);
      return n;
    },
  };
}

/** A byte count: digits with an optional K, M or G (powers of 1024; "8M", "512KiB"), at least 1. */
function byteCount(name: string) {
  return (v: string): number => {
    const m = /^(\d+)\s*(?:([kmg])(?:i?b)?)?$/i.exec(v.trim());
    const n = m ? parseWholeNumber(m[1]) * 1024 ** ' kmg'.indexOf((m[2] ?? ' ').toLowerCase()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} must be a positive number of bytes such as 8M or 65536, got '${v}'`);
    return n;
  };
}

/** --max-record-bytes: the readers' per-record limit (what bounds their memory). */
export function maxRecordBytes(description = 'skip (with a warning) a record or line longer than this, without reading it whole (K/M/G suffixes)'): StringArg {
  return { type: 'string', valueHint: 'n', description, parse: byteCount('--max-record-bytes'), default: DEFAULT_MAX_RECORD_BYTES, defaultText: '8M' };
}

/** The two flags of the commands that read records: --strict and --quiet. */
export const RECORD_FLAGS = {
  strict: { type: 'boolean', description: 'stop at the first bad record' },
  quiet: { type: 'boolean', description: 'no warnings or progress' },
} as const;

/** Writes to stdout and waits for it (so a large dump does not pile up in memory). */
export function write(s: string): Promise<void> {
  if (s === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdout.write(s, (err) => (err ? reject(err) : resolve()));
  });
}
