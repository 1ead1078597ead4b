/**
 * Streamed readers for JSON arrays, JSON lines and plain text lines, in bounded memory (one record
 * at a time plus a read chunk).
 *
 * Memory is bounded by the per-record limit, not by the input: a record (array element, JSON line,
 * text line) longer than `maxRecordBytes` (default 8 MiB) is never held whole — once its bytes pass
 * the limit they are dropped as they are scanned (only the scanner's state is kept: nesting, whether
 * inside a string, a trailing backslash run), and the record is reported as a `RecordError` (a
 * warning, or an error with --strict) instead of being parsed. So a reader holds at most the limit
 * plus a 1 MiB read chunk, whatever one field of one record holds.
 *
 * Why not stream-json: every record must be checked for invalid UTF-8 on its own (a broken byte must
 * cost that record, not the file, and must not silently become U+FFFD), which needs the record's
 * bytes. So the top-level structure is split at the byte level (strings, escapes and nesting are
 * tracked; UTF-8 continuation bytes can never look like JSON punctuation) and each record's bytes are
 * decoded with a fatal UTF-8 decoder and handed to JSON.parse. This is also several times faster.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { refuseSpecialFile } from '@cllama/core';
import { InputFormatError, RecordError } from './errors.js';

/** One item of an input file: the parsed value, or why it could not be parsed. */
export type RawItem =
  | { ok: true; value: unknown; index: number; line: number; where: string }
  | { ok: false; error: RecordError; index: number; line: number; where: string };

export type JsonFileKind = 'array' | 'jsonl';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CHUNK = 1 << 20;

/** The default per-record limit of the readers (and the data CLIs' --max-record-bytes): 8 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 8 << 20;

/** Options of the streamed readers. */
export interface ReaderOptions {
  /** A record longer than this many bytes is skipped unread and reported (default 8 MiB). */
  maxRecordBytes?: number;
}

function recordLimit(opts: ReaderOptions | undefined): number {
  const n = opts?.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!(Number.isSafeInteger(n) && n >= 1)) throw new InputFormatError(`the per-record limit must be a positive whole number of bytes, got ${n}`);
  return n;
}

/** "8 MiB", "512 KiB", "100 bytes". */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

function tooLarge(bytes: number, limit: number): string {
  return `${bytes} bytes, over the ${formatBytes(limit)} per-record limit (--max-record-bytes); skipped without reading it`;
}

async function* chunks(file: string): AsyncGenerator<Buffer> {
  await refuseSpecialFile(file);
  let isFolder = false;
  try {
    await fsp.access(file);
    isFolder = (await fsp.stat(file)).isDirectory();
  } catch {
    throw new InputFormatError(`${file}: file not found or not readable`);
  }
  if (isFolder) throw new InputFormatError(`${file} is a folder; give a JSON or JSON-lines file`);
  const stream = createReadStream(file, { highWaterMark: CHUNK });
  for await (const c of stream) yield c as Buffer;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Decide array vs JSON lines from the first non-space byte (after a UTF-8 BOM). */
export async function sniffJsonKind(file: string): Promise<JsonFileKind | 'empty'> {
  for await (const c of chunks(file)) {
    let i = c[0] === 0xef && c[1] === 0xbb && c[2] === 0xbf ? 3 : 0;
    for (; i < c.length; i++) {
      if (isSpace(c[i])) continue;
      return c[i] === 0x5b /* [ */ ? 'array' : 'jsonl';
    }
  }
  return 'empty';
}

function parseItem(file: string, bytes: Buffer, index: number, line: number, where: string): RawItem {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    return {
      ok: false,
      index,
      line,
      where,
      error: new RecordError(
        file,
        where,
        `not valid UTF-8 (bad byte 0x${bytes[bad].toString(16).padStart(2, '0')} at byte ${bad} of the record); re-encode the file as UTF-8`,
      ),
    };
  }
  try {
    return { ok: true, value: JSON.parse(text), index, line, where };
  } catch (err) {
    const preview = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    return { ok: false, index, line, where, error: new RecordError(file, where, `not valid JSON (${(err as Error).message}): ${JSON.stringify(preview)}`) };
  }
}

/** Offset of the first byte that breaks UTF-8 (for the error message). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    for (let k = 1; k < n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    try {
      utf8.decode(b.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return 0;
}

/**
 * Raw lines of a file as bytes (without `\n` / `\r\n`), with 1-based line numbers. A final line
 * without a newline is still a line. A line longer than the record limit comes with empty `bytes` and
 * its length in `tooLarge`; its bytes were never held.
 */
export async function* readByteLines(file: string, opts: ReaderOptions = {}): AsyncGenerator<{ bytes: Buffer; line: number; tooLarge?: number }> {
  const limit = recordLimit(opts);
  const none = Buffer.alloc(0);
  let carry: Buffer | undefined;
  let skipped = -1; // bytes of an over-long line dropped so far; -1 when not skipping
  let line = 0;
  let first = true;
  for await (let c of chunks(file)) {
    if (first && c[0] === 0xef && c[1] === 0xbb && c[2] === 0xbf) c = c.subarray(3);
    first = false;
    let start = 0;
    for (let nl = c.indexOf(0x0a); nl !== -1; nl = c.indexOf(0x0a, start)) {
      let piece = c.subarray(start, nl);
      start = nl + 1;
      if (skipped >= 0) {
        const n = skipped + piece.length;
        skipped = -1;
        yield { bytes: none, line: ++line, tooLarge: n };
        continue;
      }
      if (carry) {
        piece = Buffer.concat([carry, piece]);
        carry = undefined;
      }
      if (piece.length > 0 && piece[piece.length - 1] === 0x0d) piece = piece.subarray(0, piece.length - 1);
      if (piece.length > limit) yield { bytes: none, line: ++line, tooLarge: piece.length };
      else yield { bytes: piece, line: ++line };
    }
    if (start < c.length) {
      const rest = c.subarray(start);
      if (skipped >= 0) skipped += rest.length;
      else if ((carry?.length ?? 0) + rest.length > limit) {
        skipped = (carry?.length ?? 0) + rest.length;
        carry = undefined;
      } else carry = carry ? Buffer.concat([carry, rest]) : Buffer.from(rest);
    }
  }
  if (skipped >= 0) yield { bytes: none, line: ++line, tooLarge: skipped };
  else if (carry && carry.length > 0) {
    if (carry[carry.length - 1] === 0x0d) carry = carry.subarray(0, carry.length - 1);
    yield { bytes: carry, line: ++line };
  }
}

/**
 * Text lines (for pre-training), without `\n` / `\r\n`. Lines that are not valid UTF-8, and lines
 * longer than the record limit (never held whole), are reported through `onError` and skipped
 * (thrown without `onError`).
 * Fast path: a whole chunk (up to its last newline) is decoded at once and split; only a chunk that
 * fails to decode is taken apart line by line to find the bad lines.
 */
export async function* readTextLines(file: string, onError?: (e: RecordError) => void, opts: ReaderOptions = {}): AsyncGenerator<string> {
  const limit = recordLimit(opts);
  let carry: Buffer | undefined;
  let skipped = -1; // bytes of an over-long line dropped so far; -1 when not skipping
  let line = 0;
  let first = true;
  const report = (e: RecordError) => {
    if (onError) onError(e);
    else throw e;
  };
  const tooLong = (bytes: number) => report(new RecordError(file, `line ${line}`, tooLarge(bytes, limit)));
  /** Split bytes (no trailing newline) into lines, decoding each on its own. */
  const perLine = function* (bytes: Buffer): Generator<string> {
    let start = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, start);
      let piece = bytes.subarray(start, nl === -1 ? bytes.length : nl);
      if (piece.length > 0 && piece[piece.length - 1] === 0x0d) piece = piece.subarray(0, piece.length - 1);
      line++;
      if (piece.length > limit) tooLong(piece.length);
      else {
        try {
          yield utf8.decode(piece);
        } catch {
          report(new RecordError(file, `line ${line}`, `not valid UTF-8 (bad byte at byte ${firstInvalidUtf8(piece)}); the line was skipped`));
        }
      }
      if (nl === -1) return;
      start = nl + 1;
    }
  };
  const whole = function* (bytes: Buffer): Generator<string> {
    // `bytes` ends with '\n'. Decode it in one go when it is valid UTF-8.
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      yield* perLine(bytes.subarray(0, bytes.length - 1));
      return;
    }
    const parts = text.split('\n');
    parts.pop(); // after the final '\n'
    for (const p of parts) {
      line++;
      // a UTF-16 length is at most the UTF-8 length, and at least a third of it
      if (p.length * 3 > limit && Buffer.byteLength(p) > limit) tooLong(Buffer.byteLength(p));
      else yield p.endsWith('\r') ? p.slice(0, -1) : p;
    }
  };
  for await (let c of chunks(file)) {
    if (first && c[0] === 0xef && c[1] === 0xbb && c[2] === 0xbf) c = c.subarray(3);
    first = false;
    const lastNl = c.lastIndexOf(0x0a);
    if (lastNl === -1) {
      if (skipped >= 0) skipped += c.length;
      else if ((carry?.length ?? 0) + c.length > limit) {
        skipped = (carry?.length ?? 0) + c.length;
        carry = undefined;
      } else carry = carry ? Buffer.concat([carry, c]) : Buffer.from(c);
      continue;
    }
    let from = 0;
    if (skipped >= 0) {
      // the over-long line ends at this chunk's first newline
      const firstNl = c.indexOf(0x0a);
      line++;
      tooLong(skipped + firstNl);
      skipped = -1;
      from = firstNl + 1;
    }
    const head = carry ? Buffer.concat([carry, c.subarray(0, lastNl + 1)]) : c.subarray(from, lastNl + 1);
    carry = undefined;
    const rest = c.length - (lastNl + 1);
    if (rest > limit) skipped = rest;
    else if (rest > 0) carry = Buffer.from(c.subarray(lastNl + 1));
    if (head.length > 0) yield* whole(head);
  }
  if (skipped >= 0) {
    line++;
    tooLong(skipped);
  } else if (carry && carry.length > 0) yield* perLine(carry);
}

/** JSON lines: one value per non-blank line. Errors name the line. */
export async function* readJsonLines(file: string, opts: ReaderOptions = {}): AsyncGenerator<RawItem> {
  const limit = recordLimit(opts);
  let index = 0;
  for await (const { bytes, line, tooLarge: size } of readByteLines(file, opts)) {
    if (size !== undefined) {
      const where = `line ${line}`;
      yield { ok: false, index: index++, line, where, error: new RecordError(file, where, tooLarge(size, limit)) };
      continue;
    }
    let blank = true;
    for (let i = 0; i < bytes.length && blank; i++) blank = isSpace(bytes[i]);
    if (blank) continue;
    yield parseItem(file, bytes, index++, line, `line ${line}`);
  }
}

/**
 * The elements of a top-level JSON array, one at a time. Errors name the record (1-based) and the
 * line it starts on. A malformed element costs only itself; a truncated file costs its last element.
 *
 * Outside strings the bytes are scanned one by one (nesting, commas); string contents — most of the
 * bytes of Alpaca data — are skipped with Buffer.indexOf to the next unescaped quote, and newlines are
 * counted with indexOf only when a line number is needed.
 */
export async function* readJsonArray(file: string, opts: ReaderOptions = {}): AsyncGenerator<RawItem> {
  const limit = recordLimit(opts);
  let dropped = 0; // bytes of the current (over-long) element dropped so far
  let buf: Buffer = Buffer.alloc(0); // the current element's bytes from its start on, or the chunk
  let pos = 0; // scan position in buf
  let elemStart = -1; // start of the current element in buf, -1 when between elements
  let depth = 0; // 0 before the array, 1 inside it, >1 inside an element
  let inString = false; // inside a string that continues into the next chunk
  let ended = false;
  let index = 0;
  let sawOpen = false;
  let trailingReported = false;
  let firstChunk = true;
  // Line bookkeeping: `lineAt` is the line number of buf[linePos].
  let linePos = 0;
  let lineAt = 1;
  const lineOf = (p: number): number => {
    for (let nl = buf.indexOf(0x0a, linePos); nl !== -1 && nl < p; nl = buf.indexOf(0x0a, nl + 1)) lineAt++;
    linePos = p;
    return lineAt;
  };
  let elemLine = 1;
  const where = (i: number, l: number) => `record ${i + 1} (line ${l})`;
  /** The closing quote of the string whose contents start at `from`, or -1 if not in buf. */
  const closingQuote = (from: number): number => {
    for (let q = buf.indexOf(0x22, from); q !== -1; q = buf.indexOf(0x22, q + 1)) {
      let k = q - 1;
      while (k >= from && buf[k] === 0x5c) k--;
      if ((q - 1 - k) % 2 === 0) return q; // an even run of backslashes: the quote is not escaped
    }
    return -1;
  };
  let stringFrom = 0; // where the open string's contents start (when inString)

  for await (const c of chunks(file)) {
    if (elemStart >= 0) {
      // Keep the element being read; positions shift by elemStart.
      buf = Buffer.concat([buf.subarray(elemStart), c]);
      pos -= elemStart;
      stringFrom -= elemStart;
      linePos -= elemStart;
      elemStart = 0;
    } else {
      lineOf(buf.length);
      buf = c;
      pos = 0;
      linePos = 0;
    }
    if (firstChunk && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = linePos = 3;
    firstChunk = false;
    const items: RawItem[] = [];
    while (pos < buf.length) {
      if (inString) {
        const q = closingQuote(stringFrom);
        if (q === -1) {
          // The string goes on in the next chunk; closingQuote searches again from its start then
          // (so a backslash run across the chunk boundary is judged whole).
          pos = buf.length;
          break;
        }
        inString = false;
        pos = q + 1;
        continue;
      }
      const b = buf[pos];
      if (ended) {
        if (!isSpace(b) && !trailingReported) {
          trailingReported = true;
          const l = lineOf(pos);
          items.push({
            ok: false,
            index,
            line: l,
            where: `line ${l}`,
            error: new RecordError(file, `line ${l}`, 'unexpected data after the closing ] of the array; the rest of the file was ignored'),
          });
        }
        pos++;
        continue;
      }
      if (!sawOpen) {
        if (!isSpace(b)) {
          if (b !== 0x5b) throw new InputFormatError(`${file}: expected a JSON array ('[') at line ${lineOf(pos)}; for JSON lines use one object per line`);
          sawOpen = true;
          depth = 1;
        }
        pos++;
        continue;
      }
      if (depth === 1 && (b === 0x2c /* , */ || b === 0x5d) /* ] */) {
        if (elemStart >= 0) {
          const size = dropped + pos - elemStart;
          if (size > limit) {
            const w = where(index, elemLine);
            items.push({ ok: false, index, line: elemLine, where: w, error: new RecordError(file, w, tooLarge(size, limit)) });
          } else items.push(parseItem(file, buf.subarray(elemStart, pos), index, elemLine, where(index, elemLine)));
          index++;
          elemStart = -1;
          dropped = 0;
        } else if (b === 0x2c) {
          const l = lineOf(pos);
          items.push({
            ok: false,
            index,
            line: l,
            where: where(index, l),
            error: new RecordError(file, where(index, l), 'empty element (two commas in a row, or a comma after [)'),
          });
          index++;
        }
        if (b === 0x5d) {
          ended = true;
          depth = 0;
        }
        pos++;
        continue;
      }
      if (isSpace(b)) {
        pos++;
        continue;
      }
      if (elemStart < 0) {
        elemStart = pos;
        elemLine = lineOf(pos);
      }
      if (b === 0x22) {
        inString = true;
        stringFrom = pos + 1;
      } else if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) depth--;
      pos++;
    }
    if (elemStart >= 0 && dropped + buf.length - elemStart > limit) {
      // Over the limit: drop the element's bytes, keeping only what the scanner still needs (inside a
      // string, the trailing run of backslashes, whose parity decides whether the next quote is escaped).
      let keep = buf.length;
      if (inString) while (keep > stringFrom && buf[keep - 1] === 0x5c) keep--;
      lineOf(keep);
      dropped += keep - elemStart;
      buf = Buffer.from(buf.subarray(keep));
      pos -= keep;
      linePos -= keep;
      stringFrom = 0;
      elemStart = 0;
    }
    for (const it of items) yield it;
  }
  if (!sawOpen) return; // empty file: no records
  if (!ended) {
    const l = elemStart >= 0 ? elemLine : lineOf(buf.length);
    const w = elemStart >= 0 ? where(index, elemLine) : `line ${l}`;
    yield { ok: false, index, line: l, where: w, error: new RecordError(file, w, 'the file ends inside the array (truncated?); this record was dropped') };
  }
}

/** Records of a JSON array or JSON-lines file (decided by the first byte). */
export async function* readJsonRecords(file: string, opts: ReaderOptions = {}): AsyncGenerator<RawItem> {
  recordLimit(opts);
  const kind = await sniffJsonKind(file);
  if (kind === 'empty') return;
  yield* kind === 'array' ? readJsonArray(file, opts) : readJsonLines(file, opts);
}
