/**
 * Does the exported tokenizer.json tokenize like SentencePiece? HF's BPE applies merges by rank and
 * can only build a piece through a listed merge, while SentencePiece's BPE picks the highest-scoring
 * adjacent pair (ties: leftmost) among all pieces. With the reference merge every added piece has
 * score 0, so the two disagree on many lines; we measure it and say so instead of hiding it.
 */
import { promises as fs } from 'node:fs';
import { refuseSpecialFile } from '@cllama/core';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TokenizerMergeError, type ModelProto } from './proto.js';
import type { SentencePieceTokenizer } from './tokenizer.js';

export interface AgreementReport {
  /** Non-empty sample lines compared. */
  lines: number;
  /** Lines whose ids differ (SentencePiece with BOS vs tokenizer.json with special tokens). */
  disagreements: number;
  /** Up to 5 differing lines with both segmentations. */
  examples: Array<{ text: string; sentencePiece: string[]; tokenizerJson: string[] }>;
  /** Tokens (without BOS) per character (code point) over the sample. */
  sentencePieceTokensPerChar: number;
  tokenizerJsonTokensPerChar: number;
}

/** Encode every line both ways and count the lines where the ids differ. */
export function measureAgreement(
  sentencePiece: SentencePieceTokenizer,
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  lines: readonly string[],
): AgreementReport {
  const hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
  let compared = 0;
  let disagreements = 0;
  let chars = 0;
  let spTokens = 0;
  let hfTokens = 0;
  const examples: AgreementReport['examples'] = [];
  for (const text of lines) {
    if (text.trim().length === 0) continue;
    compared++;
    chars += Array.from(text).length;
    const spIds = sentencePiece.encode(text, { addBos: true });
    const hfIds = hf.encode(text).ids as number[];
    spTokens += spIds.length - 1;
    hfTokens += hfIds.length - 1;
    if (spIds.length !== hfIds.length || spIds.some((id, i) => id !== hfIds[i])) {
      disagreements++;
      if (examples.length < 5) {
        examples.push({
          text,
          sentencePiece: spIds.slice(1).map((id) => sentencePiece.idToPiece(id)),
          tokenizerJson: hf.encode(text, { add_special_tokens: false }).tokens as string[],
        });
      }
    }
  }
  return {
    lines: compared,
    disagreements,
    examples,
    sentencePieceTokensPerChar: chars > 0 ? spTokens / chars : 0,
    tokenizerJsonTokensPerChar: chars > 0 ? hfTokens / chars : 0,
  };
}

/**
 * Pieces (ids ≥ fromId) that HF's BPE can never produce: longer than one character and with no split
 * into two pieces of the vocabulary, so no merge builds them.
 */
export function unreachablePieces(proto: ModelProto, fromId = 0): string[] {
  const vocab = new Set(proto.pieces.map((p) => p.piece as string));
  const out: string[] = [];
  for (let id = fromId; id < proto.pieces.length; id++) {
    const chars = Array.from(proto.pieces[id].piece as string);
    if (chars.length < 2) continue;
    let splittable = false;
    for (let k = 1; k < chars.length && !splittable; k++) {
      splittable = vocab.has(chars.slice(0, k).join('')) && vocab.has(chars.slice(k).join(''));
    }
    if (!splittable) out.push(proto.pieces[id].piece as string);
  }
  return out;
}

/** The sample shipped with the package: 1,000 held-out Chinese lines + 467 English paragraphs. */
export function builtinSamplePath(): string {
  const here = typeof __dirname !== 'undefined' ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '../data/agreement-sample.txt');
}

/** Lines of a sample file (the built-in one when `file` is undefined); empty lines dropped. */
export async function readSampleLines(file?: string): Promise<string[]> {
  const target = file ?? builtinSamplePath();
  await refuseSpecialFile(target);
  let text: string;
  try {
    text = await fs.readFile(target, 'utf8');
  } catch {
    throw new TokenizerMergeError(`cannot read sample file ${target}; pass a UTF-8 text file with one sample per line`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new TokenizerMergeError(`sample file ${target} has no non-empty lines`);
  return lines;
}
