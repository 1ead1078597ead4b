/**
 * Alpaca records from files: type checks per record, with missing or wrongly typed fields reported
 * (and the record skipped) rather than fatal — unless `strict`, where the first problem throws.
 */
import { RecordError } from './errors.js';
import { readJsonRecords, type RawItem, type ReaderOptions } from './readers.js';
import type { AlpacaRecord } from './sft.js';

export interface ReadOptions extends ReaderOptions {
  /** Throw on the first bad record instead of reporting it. */
  strict?: boolean;
  /** Called for every skipped record (default: collected nowhere). */
  onError?: (e: RecordError) => void;
}

/** Where a record came from, for reports and errors. */
export interface Located<T> {
  record: T;
  index: number;
  where: string;
}

/**
 * Check one parsed value as an Alpaca record: `instruction` and `output` strings (required), `input`
 * a string, null or absent. Extra fields (e.g. pCLUE's `type`) are kept. Returns the problem text or
 * the record.
 */
export function checkAlpacaRecord(value: unknown): AlpacaRecord | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `expected an object with instruction/input/output, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`;
  }
  const v = value as Record<string, unknown>;
  const missing = ['instruction', 'output'].filter((k) => v[k] === undefined);
  if (missing.length > 0) return `missing field${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(' and ')}`;
  for (const k of ['instruction', 'output']) {
    if (typeof v[k] !== 'string') return `field "${k}" must be a string, got ${typeOf(v[k])}`;
  }
  if (v.input !== undefined && v.input !== null && typeof v.input !== 'string') {
    return `field "input" must be a string, got ${typeOf(v.input)}`;
  }
  const rec = { ...v, instruction: v.instruction as string, output: v.output as string } as AlpacaRecord & Record<string, unknown>;
  rec.input = typeof v.input === 'string' ? v.input : '';
  return rec;
}

function typeOf(x: unknown): string {
  return x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x;
}

/** Apply `check` to raw items; report or throw on failures. */
export async function* checkedRecords<T>(
  items: AsyncIterable<RawItem>,
  file: string,
  check: (value: unknown) => T | string,
  opts: ReadOptions = {},
): AsyncGenerator<Located<T>> {
  for await (const it of items) {
    let error: RecordError;
    if (it.ok) {
      const r = check(it.value);
      if (typeof r !== 'string') {
        yield { record: r, index: it.index, where: it.where };
        continue;
      }
      error = new RecordError(file, it.where, r);
    } else {
      error = it.error;
    }
    if (opts.strict) throw error;
    opts.onError?.(error);
  }
}

/** Alpaca records of a JSON array or JSON-lines file. */
export function readAlpacaRecords(file: string, opts: ReadOptions = {}): AsyncGenerator<Located<AlpacaRecord>> {
  return checkedRecords(readJsonRecords(file, opts), file, checkAlpacaRecord, opts);
}
