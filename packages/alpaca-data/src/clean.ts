/**
 * Cleaning rules for instruction data, each with a reason name for the mix report, and the
 * normalization used for duplicate detection. Lengths are counted in code points without building
 * arrays (a `[...text]` of a 100 MB field is an array V8 cannot allocate).
 */
import { createHash } from 'node:crypto';
import type { AlpacaRecord } from './sft.js';

export type DropReason =
  | 'empty-instruction'
  | 'empty-output'
  | 'output-too-long'
  | 'prompt-too-long'
  | 'refusal'
  | 'broken-encoding'
  | 'duplicate-exact'
  | 'duplicate-near';

export interface CleanOptions {
  /** Drop records whose output has more characters than this (default 4,096). */
  maxOutputChars?: number;
  /** Drop records whose instruction + input has more characters than this (default 4,096). */
  maxPromptChars?: number;
  /** Drop refusal boilerplate ("As an AI language model…", "作为一个AI语言模型…") (default on). */
  dropRefusals?: boolean;
  /** Extra refusal phrases (matched case-insensitively as substrings). */
  refusalPhrases?: string[];
}

/**
 * Refusal / self-description boilerplate that ChatGPT-crawled data is full of; matched lower-cased,
 * after NFKC (so full-width "ＡＩ" matches too).
 */
export const REFUSAL_PHRASES = [
  'as an ai language model',
  'as a language model',
  'as an ai assistant, i cannot',
  "i'm sorry, but as an ai",
  'i am sorry, but as an ai',
  "i'm sorry, but i cannot",
  'i cannot fulfill',
  'i am not able to provide',
  '作为一个ai语言模型',
  '作为一个人工智能语言模型',
  '作为ai语言模型',
  '作为一名ai语言模型',
  '作为一个语言模型',
  '我是一个ai语言模型',
  '作为一个人工智能，我',
  '很抱歉，作为一个',
  '抱歉，我无法',
];

/**
 * Signs that text went through a wrong decoding: U+FFFD, C0 controls other than tab/newline/CR, and
 * the classic UTF-8-read-as-Latin-1 / cp1252 sequences ("Ã©", "â€™", "å¤").
 */
const BROKEN_ENCODING =
  /[\uFFFD\u0000-\u0008\u000B\u000C\u000E-\u001F]|Ã[\u0080-\u00BF]|â€[\u0080-\u00BF\u2018-\u201E\u2122\u0153\u02DC]|[åæçè][\u0080-\u00BF]{2}/;

export function hasBrokenEncoding(text: string): boolean {
  return BROKEN_ENCODING.test(text);
}

/** The first rule a record breaks, or undefined when it is kept. */
export function cleaningReason(rec: AlpacaRecord, opts: CleanOptions = {}): DropReason | undefined {
  const instruction = rec.instruction.trim();
  const input = (rec.input ?? '').trim();
  const output = rec.output.trim();
  if (instruction === '') return 'empty-instruction';
  if (output === '') return 'empty-output';
  if (hasBrokenEncoding(rec.instruction) || hasBrokenEncoding(rec.input ?? '') || hasBrokenEncoding(rec.output)) return 'broken-encoding';
  if (codePoints(output) > (opts.maxOutputChars ?? 4096)) return 'output-too-long';
  if (codePoints(instruction) + codePoints(input) > (opts.maxPromptChars ?? 4096)) return 'prompt-too-long';
  if (opts.dropRefusals ?? true) {
    const o = output.normalize('NFKC').toLowerCase();
    for (const p of [...REFUSAL_PHRASES, ...(opts.refusalPhrases ?? []).map((x) => x.normalize('NFKC').toLowerCase())]) {
      if (o.includes(p)) return 'refusal';
    }
  }
  return undefined;
}

/** Characters of a text as code points (what `[...text].length` counts), without building an array. */
export function codePoints(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** A 66-bit digest of a duplicate key: what the duplicate sets hold (memory per record, not per byte). */
export function keyDigest(key: string): string {
  return createHash('sha1').update(key).digest('base64').slice(0, 11);
}

/** Key for exact duplicates: the three fields as they are. */
export function exactKey(rec: AlpacaRecord): string {
  return JSON.stringify([rec.instruction, rec.input ?? '', rec.output]);
}

/**
 * Key for near duplicates: instruction + input, NFKC (full-width → half-width), lower case, with all
 * whitespace, punctuation and symbols removed — so "写一首诗。" and "写一首诗 ！" collide.
 */
export function nearKey(rec: AlpacaRecord): string {
  return `${rec.instruction}\u0000${rec.input ?? ''}`
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{P}\p{S}]+/gu, '');
}
