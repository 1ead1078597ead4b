/**
 * The texts and models the encoder tests check, shared with bench/unigram-golden.ts (which writes
 * test-fixtures/data/unigram_golden.json from Python sentencepiece): the held-out and demo corpora,
 * the edge-case texts of encoder_golden.json, the variant models built from the committed ones, and
 * the UNIGRAM cases whose expected ids come from Python sentencepiece 0.2.2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModelProto, parseModelProto } from '../src/proto.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test-fixtures');
export const UNIGRAM_GOLDEN = path.join(FIXTURES, 'data/unigram_golden.json');

const readLines = (file: string) =>
  readFileSync(path.join(FIXTURES, 'data', file), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
const alpaca = (file: string) =>
  (JSON.parse(readFileSync(path.join(FIXTURES, 'data', file), 'utf8')) as Array<Record<string, string>>)
    .slice(0, 300)
    .flatMap((r) => [r.instruction, r.input, r.output].filter((t) => t && t.length > 0));

export const zhLines = readLines('zh_heldout_3000.txt');
export const c4Docs = readLines('c4_demo.jsonl').map((l) => JSON.parse(l).text as string);
export const alpacaEn = alpaca('alpaca_en_demo.json');
export const alpacaZh = alpaca('alpaca_zh_demo.json');
export type ModelName = 'llama_tokenizer' | 'merged_reference' | 'chinese_sp';
export const golden = JSON.parse(readFileSync(path.join(FIXTURES, 'data/encoder_golden.json'), 'utf8')) as {
  generator: string;
  texts: string[];
  ids: Record<ModelName, number[][]>;
  decoded: Record<ModelName, string[]>;
};

export function readProto(name: string): ModelProto {
  return parseModelProto(new Uint8Array(readFileSync(path.join(FIXTURES, 'tokenizers', `${name}.model`))));
}

/**
 * sentencepiece-js (emscripten) converts a lone surrogate into bytes that are not UTF-8, while
 * TextEncoder, Node and Python give U+FFFD (EF BF BD), as we do; such texts are checked against
 * Python only (encoder_golden.json).
 */
export const hasLoneSurrogate = (t: string) => /[\ud800-\udfff]/.test(t.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));

export function withUserDefined(proto: ModelProto, symbols: string[]): ModelProto {
  return { ...proto, pieces: [...proto.pieces, ...symbols.map((piece) => ({ piece, score: 0, type: 4 as const }))] };
}

/** What the variant models are checked on. */
export const variantTexts = [...golden.texts, ...zhLines.slice(0, 300), ...c4Docs.slice(0, 30), '<tool>call</tool> <tool>', 'hello<sep>world<sep><sep>'].filter(
  (t) => !hasLoneSurrogate(t),
);

export interface UnigramCase {
  name: string;
  proto: ModelProto;
  /** texts whose ids are checked */
  texts: string[];
  /** texts whose pieces (`EncodeAsPieces`) are checked */
  pieceTexts: string[];
}

/**
 * Two user-defined pieces "X#" and "#Y" in chinese_sp, with X a one-byte and Y a three-byte
 * character scored s(X) < s(Y) < s(X) + 0.2: on "X#Y", sentencepiece 0.1.x (user-defined piece =
 * -0.1, since its max_score stays FLT_MIN) takes "X#"+"Y", 0.2.2 (0.1 × (bytes − 1)) takes "X"+"#Y".
 */
function userDefinedScoring(): UnigramCase {
  const proto = readProto('chinese_sp');
  const score = new Map(proto.pieces.filter((p) => (p.type ?? 1) === 1).map((p) => [p.piece ?? '', p.score ?? 0]));
  const singles = [...score.keys()].filter((p) => [...p].length === 1);
  const byScore = (a: string, b: string) => score.get(a)! - score.get(b)! || (a < b ? -1 : 1);
  const ascii = singles.filter((p) => /^[a-zA-Z]$/.test(p)).sort(byScore);
  const cjk = singles.filter((p) => Buffer.byteLength(p) === 3).sort(byScore);
  const pairs: Array<[string, string]> = [];
  for (const x of ascii) {
    const y = cjk.find((c) => score.get(x)! < score.get(c)! && score.get(c)! < score.get(x)! + 0.2);
    if (y && !score.has(`${x}#`) && !score.has(`#${y}`)) pairs.push([x, y]);
    if (pairs.length === 6) break;
  }
  const symbols = [...new Set(pairs.flatMap(([x, y]) => [`${x}#`, `#${y}`]))];
  const texts = pairs.flatMap(([x, y]) => [`${x}#${y}`, `。${x}#${y}`, `a ${x}#${y}中 ${y}#${x}`]);
  return { name: 'chinese_sp + user-defined pieces (bytes-based score)', proto: withUserDefined(proto, symbols), texts, pieceTexts: texts };
}

/** The UNIGRAM models and texts of test-fixtures/data/unigram_golden.json, in its order. */
export function unigramCases(): UnigramCase[] {
  const zh = readProto('chinese_sp');
  const bytes = Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: 6 as const }));
  const withUd = withUserDefined(zh, ['<tool>', '</tool>', '<sep>', '〔中文〕']);
  const edge = golden.texts.filter((t) => !hasLoneSurrogate(t));
  return [
    {
      name: 'chinese_sp',
      proto: zh,
      texts: [...zhLines, ...c4Docs, ...alpacaEn, ...alpacaZh, ...edge],
      pieceTexts: [...edge, ...zhLines.slice(0, 1000), ...c4Docs.slice(0, 50)],
    },
    {
      name: 'chinese_sp + user-defined symbols + byte fallback',
      proto: { ...withUd, pieces: [...withUd.pieces, ...bytes], trainerSpec: { ...withUd.trainerSpec, byteFallback: true } },
      texts: variantTexts,
      pieceTexts: variantTexts,
    },
    {
      name: 'chinese_sp + UNUSED pieces, no dummy prefix',
      proto: {
        ...zh,
        pieces: zh.pieces.map((p, i) => (i % 5 === 0 && (p.type ?? 1) === 1 ? { ...p, type: 5 as const } : p)),
        normalizerSpec: { ...zh.normalizerSpec, addDummyPrefix: false },
      },
      texts: variantTexts,
      pieceTexts: variantTexts,
    },
    userDefinedScoring(),
  ];
}

/**
 * One text where Python sentencepiece 0.2.2 and sentencepiece-js (0.1.x) differ, as an edit of
 * sentencepiece-js's list: 0.2.2's = js[0, at) + with + js[at + replace, end).
 */
export interface UnigramDifference<T> {
  index: number;
  /** the text's first 40 characters, for a reader */
  head: string;
  at: number;
  replace: number;
  with: T[];
}

/** The edit that turns `from` into `to` (common prefix and suffix kept). */
export function difference<T>(index: number, head: string, from: readonly T[], to: readonly T[]): UnigramDifference<T> {
  let at = 0;
  while (at < from.length && at < to.length && from[at] === to[at]) at++;
  let tail = 0;
  while (tail < from.length - at && tail < to.length - at && from[from.length - 1 - tail] === to[to.length - 1 - tail]) tail++;
  return { index, head, at, replace: from.length - at - tail, with: to.slice(at, to.length - tail) };
}

/** Applies a `difference` to sentencepiece-js's list. */
export function applyDifference<T>(from: readonly T[], d: UnigramDifference<T>): T[] {
  return [...from.slice(0, d.at), ...d.with, ...from.slice(d.at + d.replace)];
}

export interface UnigramGolden {
  generator: string;
  about: string;
  cases: Array<{
    name: string;
    texts: number;
    /** sha256 of JSON.stringify(ids of every text) as Python sentencepiece gives them */
    idsSha256: string;
    /** sha256 of JSON.stringify(pieces of every piece text) */
    piecesSha256: string;
    /** texts (by index into `texts`) whose ids differ from sentencepiece-js */
    ids: Array<UnigramDifference<number>>;
    /** piece texts (by index into `pieceTexts`) whose pieces differ from sentencepiece-js */
    pieces: Array<UnigramDifference<string>>;
  }>;
}
