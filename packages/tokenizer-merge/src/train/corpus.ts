/**
 * Training-corpus preparation, as TrainerInterface::LoadSentences does it: stream the input files
 * line by line, skip empty / too long / reserved-character lines, optionally sample
 * `inputSentenceSize` lines (reservoir sampling with a seed), normalize, replace meta pieces by a
 * boundary, choose the alphabet by character coverage, and map every rarer character to ▅ (unknown).
 * A line is dropped as too long as soon as its bytes pass maxSentenceLength, so one huge line never
 * sits in memory.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { mulberry32 } from '@cllama/core';
import { Normalizer } from './normalizer.js';
import { UPP_BOUNDARY_CHAR, WS_CHAR } from './script.js';
import { TrainError } from './errors.js';
import { sharedFloat64, sharedInt32 } from './em-pool.js';

export interface LoadOptions {
  maxSentenceLength: number;
  inputSentenceSize: number;
  shuffleInputSentence: boolean;
  seed: number;
  normalizer: Normalizer;
  /** Pieces replaced by a boundary in training text: <unk>, <s>, </s>, control, user-defined, bytes. */
  metaPieces: string[];
  onProgress?: (linesRead: number, bytesRead: number, bytesTotal: number) => void;
}

export interface LoadedSentences {
  /** Normalized sentences (each appears once per input line; frequency 1). */
  sentences: string[];
  linesRead: number;
  tooLongLines: number;
}

const UNK_BYTES = [0xe2, 0x96, 0x85]; // ▅

/** Streams, filters, samples and normalizes the input lines. */
export async function loadSentences(inputs: string[], opts: LoadOptions): Promise<LoadedSentences> {
  let bytesTotal = 0;
  for (const file of inputs) {
    try {
      const st = await fs.stat(file);
      if (!st.isFile()) throw new TrainError(`input ${file} is not a regular file`);
      bytesTotal += st.size;
    } catch (e) {
      if (e instanceof TrainError) throw e;
      throw new TrainError(`cannot read input ${file}: ${(e as Error).message}`);
    }
  }
  const sampleSize = opts.inputSentenceSize;
  const random = mulberry32(opts.seed);
  const reservoir = sampleSize > 0 && opts.shuffleInputSentence;
  // Raw lines held back: only the reservoir sample (other lines are normalized as they stream by).
  const kept: Uint8Array[] = [];
  let accepted = 0;
  let linesRead = 0;
  let tooLongLines = 0;
  let bytesRead = 0;
  let done = false;

  const sentences: string[] = [];
  const meta = opts.metaPieces.filter((p) => p.length > 0);
  const keepNormalized = (line: Uint8Array): void => {
    let s = opts.normalizer.normalizeBytes(line);
    if (meta.length > 0) s = replaceMetaPieces(s, meta);
    if (s.length > 0) sentences.push(s);
  };

  const acceptLine = (line: Uint8Array): void => {
    linesRead++;
    if (line.length === 0) return;
    if (line.length > opts.maxSentenceLength) {
      tooLongLines++;
      return;
    }
    if (containsUnkChar(line)) return; // SentencePiece skips lines that contain its reserved ▅
    accepted++;
    if (sampleSize <= 0) {
      keepNormalized(line); // no sampling: normalize right away, never hold raw lines
    } else if (!opts.shuffleInputSentence) {
      keepNormalized(line);
      if (accepted >= sampleSize) done = true;
    } else if (kept.length < sampleSize) {
      kept.push(line);
    } else {
      const r = Math.floor(random() * accepted);
      if (r < sampleSize) kept[r] = line;
    }
  };

  for (const file of inputs) {
    if (done) break;
    let carry: Uint8Array | undefined;
    let overlong = false; // the current line is already longer than maxSentenceLength: its bytes are dropped
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytesRead += chunk.length;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        if (overlong) {
          overlong = false;
          linesRead++;
          tooLongLines++;
          start = nl + 1;
          continue;
        }
        let line: Uint8Array = chunk.subarray(start, nl);
        if (carry) {
          line = concat(carry, line);
          carry = undefined;
        } else if (reservoir) {
          line = Uint8Array.prototype.slice.call(line); // kept beyond this chunk: own the bytes
        }
        acceptLine(line);
        start = nl + 1;
        if (done) break;
      }
      if (done) break;
      if (start < chunk.length && !overlong) {
        const rest = chunk.subarray(start);
        if ((carry?.length ?? 0) + rest.length > opts.maxSentenceLength) {
          overlong = true; // skipped like any too-long line, without holding it
          carry = undefined;
        } else carry = carry ? concat(carry, rest) : Uint8Array.prototype.slice.call(rest);
      }
      opts.onProgress?.(linesRead, bytesRead, bytesTotal);
    }
    stream.destroy();
    if (overlong && !done) {
      linesRead++;
      tooLongLines++;
    } else if (carry && !done) acceptLine(carry);
  }
  opts.onProgress?.(linesRead, bytesTotal, bytesTotal);

  for (const line of kept) keepNormalized(line); // the reservoir sample, in sample order
  return { sentences, linesRead, tooLongLines };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function containsUnkChar(line: Uint8Array): boolean {
  let i = line.indexOf(UNK_BYTES[0]!);
  while (i >= 0 && i + 2 < line.length) {
    if (line[i + 1] === UNK_BYTES[1] && line[i + 2] === UNK_BYTES[2]) return true;
    i = line.indexOf(UNK_BYTES[0]!, i + 1);
  }
  return false;
}

/** PrefixMatcher::GlobalReplace: every (longest) occurrence of a meta piece becomes a tab. */
export function replaceMetaPieces(s: string, meta: string[]): string {
  let hit = false;
  for (const m of meta) if (s.includes(m)) hit = true;
  if (!hit) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    let best = 0;
    for (const m of meta) if (m.length > best && s.startsWith(m, i)) best = m.length;
    if (best > 0) {
      out += '\t';
      i += best;
    } else {
      const c = s.codePointAt(i)!;
      const w = c > 0xffff ? 2 : 1;
      out += s.slice(i, i + w);
      i += w;
    }
  }
  return out;
}

export interface Alphabet {
  /** Kept characters (code points), most frequent first: SentencePiece's required_chars_ order. */
  chars: number[];
  /** Frequency of each kept character (same order). */
  counts: number[];
  /** Character → dense id (2 + index in `chars`); 1 is ▅ (unknown), 0 is reserved. */
  idOf: Map<number, number>;
  allCharsCount: number;
  coverage: number;
}

export const BOUNDARY_ID = 0;
export const UNK_ID = 1;

/** Chooses the alphabet: characters by decreasing frequency until `characterCoverage` is reached. */
export function buildAlphabet(sentences: string[], characterCoverage: number, requiredChars: string): Alphabet {
  const counts = new Map<number, number>();
  const required = new Set<number>();
  for (const ch of requiredChars) required.add(ch.codePointAt(0)!);
  let all = 0;
  for (const s of sentences) {
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c === 0 || c === 0x20) continue;
      counts.set(c, (counts.get(c) ?? 0) + 1);
      all++;
    }
  }
  for (const c of required) if (!counts.has(c)) counts.set(c, 0);
  // Sorted(): required characters first, then by count (descending), then by code point.
  const order = [...counts.entries()].sort((a, b) => {
    const ra = required.has(a[0]) ? 1 : 0;
    const rb = required.has(b[0]) ? 1 : 0;
    if (ra !== rb) return rb - ra;
    if (a[1] !== b[1]) return b[1] - a[1];
    return a[0] - b[0];
  });
  const target = Math.fround(characterCoverage);
  let accumulated = 0;
  const chars: number[] = [];
  const kept: number[] = [];
  for (const [c, n] of order) {
    const coverage = Math.fround(all === 0 ? 1 : accumulated / all);
    if (coverage >= target) break;
    accumulated += n;
    if (c === UPP_BOUNDARY_CHAR) continue; // the tab boundary is never a piece
    chars.push(c);
    kept.push(n);
  }
  const idOf = new Map<number, number>();
  chars.forEach((c, i) => idOf.set(c, i + 2));
  return { chars, counts: kept, idOf, allCharsCount: all, coverage: all === 0 ? 1 : accumulated / all };
}

/** A sentence as dense character ids (rare characters → UNK_ID). */
export function toIds(s: string, alphabet: Alphabet, out: number[] = []): number[] {
  out.length = 0;
  const idOf = alphabet.idOf;
  for (const ch of s) out.push(idOf.get(ch.codePointAt(0)!) ?? UNK_ID);
  return out;
}

export interface WordCounts {
  /** Words as dense-id arrays, concatenated. */
  data: Int32Array;
  /** Start offset of word i in `data` (length = words + 1). */
  offsets: Int32Array;
  freqs: Float64Array;
}

/**
 * SplitSentencesByWhitespace: every ▁ starts a new word; identical words are counted once with
 * their frequency. Works on id sequences (rare characters already mapped to ▅).
 */
export function countWords(sentences: string[], alphabet: Alphabet, splitByWhitespace: boolean): WordCounts {
  const wsId = alphabet.idOf.get(WS_CHAR) ?? -1;
  const counts = new Map<string, number>();
  const ids: number[] = [];
  for (const s of sentences) {
    toIds(s, alphabet, ids);
    if (!splitByWhitespace) {
      const key = idsKey(ids, 0, ids.length);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      continue;
    }
    let start = 0;
    for (let i = 1; i <= ids.length; i++) {
      if (i === ids.length || ids[i] === wsId) {
        const key = idsKey(ids, start, i);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        start = i;
      }
    }
  }
  let total = 0;
  for (const k of counts.keys()) total += unpackLength(k);
  // Shared memory, so that the unigram trainer's worker threads read the words without a copy.
  const data = sharedInt32(total);
  const offsets = sharedInt32(counts.size + 1);
  const freqs = sharedFloat64(counts.size);
  let w = 0;
  let p = 0;
  for (const [k, f] of counts) {
    offsets[w] = p;
    p = unpackInto(k, data, p);
    freqs[w] = f;
    w++;
  }
  offsets[w] = p;
  return { data, offsets, freqs };
}

// Word keys: dense ids < 2^16 are one UTF-16 unit; larger ids (huge alphabets) take two.
function idsKey(ids: number[], start: number, end: number): string {
  let key = '';
  for (let i = start; i < end; i++) {
    const id = ids[i]!;
    key += id < 0xffff ? String.fromCharCode(id) : String.fromCharCode(0xffff, id - 0xffff);
  }
  return key;
}
function unpackLength(k: string): number {
  let n = 0;
  for (let i = 0; i < k.length; i++) {
    if (k.charCodeAt(i) === 0xffff) i++;
    n++;
  }
  return n;
}
function unpackInto(k: string, data: Int32Array, p: number): number {
  for (let i = 0; i < k.length; i++) {
    let id = k.charCodeAt(i);
    if (id === 0xffff) id = 0xffff + k.charCodeAt(++i);
    data[p++] = id;
  }
  return p;
}

/** Every sentence as ids followed by BOUNDARY_ID, in one array (the suffix-sorting input). */
export function concatSentences(sentences: string[], alphabet: Alphabet): Int32Array {
  let n = 0;
  for (const s of sentences) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff) n++;
    }
    n++;
  }
  const text = new Int32Array(n);
  const idOf = alphabet.idOf;
  let p = 0;
  for (const s of sentences) {
    for (const ch of s) text[p++] = idOf.get(ch.codePointAt(0)!) ?? UNK_ID;
    text[p++] = BOUNDARY_ID;
  }
  return text;
}
