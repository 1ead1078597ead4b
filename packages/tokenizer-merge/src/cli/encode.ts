import { createReadStream, promises as fs } from 'node:fs';
import { defineCommand, refuseSpecialFile } from '@cllama/core';
import { TokenizerMergeError } from '../proto.js';
import { loadTokenizer } from '../tokenizer.js';

export interface EncodeCommandOptions {
  model: string;
  text?: string;
  file?: string;
  pieces?: boolean;
  /** The old name of `jsonl`. */
  json?: boolean;
  bos?: boolean;
  eos?: boolean;
  /** One JSON object per input line (`--jsonl`; `--json` is its old name). */
  jsonl?: boolean;
}

const MAX_WARNINGS = 5;
// ignoreBOM: a U+FEFF that opens the file (or a line) is text and is kept, as Python's open(encoding='utf-8'),
// Python sentencepiece and transformers keep it and as `--text` passes it; TextDecoder would drop it
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Offset of the first byte that breaks UTF-8 (decoding ever longer prefixes would be quadratic: step by sequence). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    try {
      utf8.decode(b.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return -1;
}

/**
 * The lines of a text file, streamed: one line and a 1 MiB read chunk in memory at a time. A line that
 * is not valid UTF-8 is skipped with a warning naming its line and the offset of the first bad byte
 * (the same rule as cllama-data's readers: never encode U+FFFD replacement characters silently in its
 * place); the first few are shown, then a count. A byte-order mark (U+FEFF) at the start of the file or
 * of a line is kept as a character, as `open(f, encoding='utf-8')` does in Python (strip it yourself, or
 * re-save the file without it, if it is not meant as text).
 */
export async function* utf8Lines(file: string, warn: (line: string) => void): AsyncGenerator<string> {
  let bad = 0;
  let lineNo = 0;
  const decode = (piece: Uint8Array): string | undefined => {
    lineNo++;
    if (piece.length > 0 && piece[piece.length - 1] === 13) piece = piece.subarray(0, piece.length - 1);
    try {
      return utf8.decode(piece);
    } catch {
      bad++;
      const at = firstInvalidUtf8(piece);
      if (bad <= MAX_WARNINGS) {
        warn(
          `warning: ${file} line ${lineNo}: not valid UTF-8 (bad byte 0x${piece[at]!.toString(16).padStart(2, '0')} at byte ${at} of the line); the line was skipped`,
        );
      }
      return undefined;
    }
  };
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      let piece: Buffer = chunk.subarray(start, nl);
      if (carry) {
        piece = Buffer.concat([carry, piece]);
        carry = undefined;
      }
      start = nl + 1;
      const text = decode(piece);
      if (text !== undefined) yield text;
    }
    if (start < chunk.length) carry = carry ? Buffer.concat([carry, chunk.subarray(start)]) : Buffer.from(chunk.subarray(start));
  }
  if (carry && carry.length > 0) {
    const text = decode(carry);
    if (text !== undefined) yield text;
  }
  if (bad > MAX_WARNINGS) warn(`warning: ${bad - MAX_WARNINGS} more skipped lines not shown`);
  if (bad > 0) warn(`warning: ${bad} of ${lineNo} lines of ${file} skipped (not valid UTF-8); re-encode the file as UTF-8`);
}

/** `cllama-tokenizer encode`: one output line per input line (ids or pieces, or a JSON object), streamed. */
export async function runEncode(
  opts: EncodeCommandOptions,
  print: (line: string) => void = console.log,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<void> {
  if ((opts.text === undefined) === (opts.file === undefined)) {
    throw new TokenizerMergeError('pass exactly one of --text <t> or --file <f>');
  }
  if (opts.file !== undefined) {
    await refuseSpecialFile(opts.file);
    const readable = await fs
      .stat(opts.file)
      .then((st) => st.isFile())
      .catch(() => false);
    if (!readable) throw new TokenizerMergeError(`cannot read ${opts.file}; pass a UTF-8 text file`);
  }
  const tok = await loadTokenizer(opts.model);
  const lines: AsyncIterable<string> | string[] = opts.text !== undefined ? [opts.text] : utf8Lines(opts.file as string, warn);
  for await (const line of lines) {
    const ids = tok.encode(line, { addBos: opts.bos, addEos: opts.eos });
    const pieces = ids.map((id) => tok.idToPiece(id));
    if (opts.jsonl || opts.json) print(JSON.stringify(opts.pieces ? { text: line, ids, pieces } : { text: line, ids }));
    else print(opts.pieces ? pieces.join(' ') : ids.join(' '));
  }
}

export const encodeCommand = defineCommand<EncodeCommandOptions>({
  meta: {
    name: 'encode',
    description: 'encode text with a SentencePiece model (SentencePiece semantics)',
    example: 'cllama-tokenizer encode --model merged/ --text "白日依山尽" --pieces',
  },
  args: {
    model: { type: 'string', valueHint: 'model', description: '.model file or HF folder with tokenizer.model', required: true },
    text: { type: 'string', valueHint: 'text', description: 'text to encode' },
    file: { type: 'string', valueHint: 'file', description: 'encode each line of a file' },
    pieces: { type: 'boolean', description: 'print pieces instead of ids' },
    bos: { type: 'boolean', description: 'prepend the BOS id' },
    eos: { type: 'boolean', description: 'append the EOS id' },
    jsonl: { type: 'boolean', description: 'print one JSON object per input line' },
    json: { type: 'boolean', description: 'old name of --jsonl', hidden: true },
  },
  run: ({ args }) => runEncode(args),
});
