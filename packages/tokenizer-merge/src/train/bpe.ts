/**
 * SentencePiece's BPE trainer (bpe_model_trainer.cc): start from characters, repeatedly merge the
 * most frequent adjacent pair of symbols (ties: shorter piece, then the lexicographically smaller
 * piece), never forming a piece that IsValidSentencePiece rejects, until the vocabulary is full.
 * Scores are -(order of creation); the kept characters follow the merged pieces, most frequent first.
 *
 * SentencePiece rescans a sample of "active" pairs every 100 merges; here pair counts are kept exact
 * with incremental updates and a lazy max-heap, which picks the same piece SentencePiece's exhaustive
 * rule would and costs time proportional to the occurrences actually touched.
 */
import type { Alphabet, WordCounts } from './corpus.js';
import { UNK_ID } from './corpus.js';
import { isValidPiece, type PieceRules } from './script.js';

export interface BpeResult {
  /** Pieces with their scores, in vocabulary order (merged pieces, then characters). */
  pieces: Array<[string, number]>;
  /** Number of merged (multi-character) pieces. */
  merges: number;
}

const SYMBOL_LIMIT = 1 << 21;

export function trainBpe(words: WordCounts, alphabet: Alphabet, rules: PieceRules, numMerges: number, onProgress?: (merges: number) => void): BpeResult {
  // Symbols: ids < alphabet.chars.length + 2 are characters (0 reserved, 1 = unknown), then merged pieces.
  const symCps: number[][] = [[], []];
  const symStr: string[] = ['', ''];
  for (const c of alphabet.chars) {
    symCps.push([c]);
    symStr.push(String.fromCodePoint(c));
  }

  // Positions: one slot per character of every word, linked into the word's current symbols.
  const n = words.data.length;
  const sym = new Int32Array(n);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const posWord = new Int32Array(n);
  const nWords = words.freqs.length;
  for (let w = 0; w < nWords; w++) {
    const s = words.offsets[w]!;
    const e = words.offsets[w + 1]!;
    for (let i = s; i < e; i++) {
      sym[i] = words.data[i]!;
      next[i] = i + 1 < e ? i + 1 : -1;
      prev[i] = i > s ? i - 1 : -1;
      posWord[i] = w;
    }
  }

  // Pairs.
  const pairIndex = new Map<number, number>();
  let pairLeft: Int32Array = new Int32Array(1 << 16);
  let pairRight: Int32Array = new Int32Array(1 << 16);
  let pairFreq: Float64Array = new Float64Array(1 << 16);
  let pairLen: Int32Array = new Int32Array(1 << 16);
  let pairState: Uint8Array = new Uint8Array(1 << 16); // 0 invalid, 1 live, 2 used up (merged or duplicate)
  let pairDirty: Uint8Array = new Uint8Array(1 << 16);
  const pairStr: string[] = [];
  const pairPositions: number[][] = [];
  let numPairs = 0;
  const dirty: number[] = [];

  const growPairs = (): void => {
    const cap = pairLeft.length * 2;
    const g32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    const g8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    pairLeft = g32(pairLeft);
    pairRight = g32(pairRight);
    pairLen = g32(pairLen);
    pairState = g8(pairState);
    pairDirty = g8(pairDirty);
    const f = new Float64Array(cap);
    f.set(pairFreq);
    pairFreq = f;
  };

  const pairString = (p: number): string => {
    let str = pairStr[p]!;
    if (str === '') str = pairStr[p] = symStr[pairLeft[p]!]! + symStr[pairRight[p]!]!;
    return str;
  };

  const getPair = (left: number, right: number): number => {
    const key = left * SYMBOL_LIMIT + right;
    let p = pairIndex.get(key);
    if (p !== undefined) return p;
    p = numPairs++;
    if (p >= pairLeft.length) growPairs();
    pairLeft[p] = left;
    pairRight[p] = right;
    let valid = left !== UNK_ID && right !== UNK_ID;
    if (valid) {
      const cps = symCps[left]!.concat(symCps[right]!);
      valid = isValidPiece(cps, rules);
      pairLen[p] = cps.length;
    }
    pairState[p] = valid ? 1 : 0;
    pairStr.push('');
    pairPositions.push(valid ? [] : EMPTY);
    pairIndex.set(key, p);
    return p;
  };
  const EMPTY: number[] = [];

  const add = (left: number, right: number, pos: number, f: number): void => {
    const p = getPair(left, right);
    if (pairState[p] !== 1) return;
    pairFreq[p] += f;
    pairPositions[p]!.push(pos);
    if (!pairDirty[p]) {
      pairDirty[p] = 1;
      dirty.push(p);
    }
  };
  const remove = (left: number, right: number, f: number): void => {
    const p = pairIndex.get(left * SYMBOL_LIMIT + right);
    if (p === undefined || pairState[p] !== 1) return;
    pairFreq[p] -= f; // the pair's heap entry now over-states it; fixed when it reaches the top
  };

  // Max-heap of (frequency snapshot, pair). Invariant: every live pair has an entry whose snapshot
  // is >= its current count (pushed when the count rises; decreases push nothing). So an entry at the
  // top whose snapshot equals the current count is the true maximum.
  let heapF = new Float64Array(1 << 16);
  let heapP = new Int32Array(1 << 16);
  let heapSize = 0;
  const better = (fa: number, pa: number, fb: number, pb: number): boolean => {
    if (fa !== fb) return fa > fb;
    const la = pairLen[pa]!;
    const lb = pairLen[pb]!;
    if (la !== lb) return la < lb;
    return compareCodePoints(pairString(pa), pairString(pb)) < 0;
  };
  const push = (f: number, p: number): void => {
    if (heapSize >= heapF.length) {
      const nf = new Float64Array(heapF.length * 2);
      nf.set(heapF);
      heapF = nf;
      const np = new Int32Array(heapP.length * 2);
      np.set(heapP);
      heapP = np;
    }
    let i = heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!better(f, p, heapF[parent]!, heapP[parent]!)) break;
      heapF[i] = heapF[parent]!;
      heapP[i] = heapP[parent]!;
      i = parent;
    }
    heapF[i] = f;
    heapP[i] = p;
  };
  const pop = (): void => {
    const f = heapF[--heapSize]!;
    const p = heapP[heapSize]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= heapSize) break;
      if (c + 1 < heapSize && better(heapF[c + 1]!, heapP[c + 1]!, heapF[c]!, heapP[c]!)) c++;
      if (!better(heapF[c]!, heapP[c]!, f, p)) break;
      heapF[i] = heapF[c]!;
      heapP[i] = heapP[c]!;
      i = c;
    }
    heapF[i] = f;
    heapP[i] = p;
  };
  const flushDirty = (): void => {
    for (const p of dirty) {
      pairDirty[p] = 0;
      if (pairState[p] === 1 && pairFreq[p]! > 0) push(pairFreq[p]!, p);
    }
    dirty.length = 0;
  };

  for (let i = 0; i < n; i++) {
    const j = next[i]!;
    if (j >= 0) add(sym[i]!, sym[j]!, i, words.freqs[posWord[i]!]!);
  }
  flushDirty();

  const pieces: Array<[string, number]> = [];
  const seen = new Set<string>();
  while (pieces.length < numMerges) {
    let best = -1;
    while (heapSize > 0) {
      const f = heapF[0]!;
      const p = heapP[0]!;
      pop();
      if (pairState[p] !== 1) continue;
      const current = pairFreq[p]!;
      if (current === f && f > 0) {
        best = p;
        break;
      }
      // Stale snapshot (counts only went down since): re-queue at the true count.
      if (current > 0 && current < f) push(current, p);
    }
    if (best < 0) break; // no valid pair left: the corpus supports no larger vocabulary
    pairState[best] = 2;
    const str = pairString(best);
    if (seen.has(str)) continue; // the same string reached by another merge path
    seen.add(str);
    pieces.push([str, -pieces.length]);

    const newSym = symCps.length;
    const left = pairLeft[best]!;
    const right = pairRight[best]!;
    symCps.push(symCps[left]!.concat(symCps[right]!));
    symStr.push(str);
    for (const pos of pairPositions[best]!) {
      if (sym[pos] !== left) continue;
      const q = next[pos]!;
      if (q < 0 || sym[q] !== right) continue;
      const f = words.freqs[posWord[pos]!]!;
      const pp = prev[pos]!;
      const nn = next[q]!;
      if (pp >= 0) remove(sym[pp]!, left, f);
      if (nn >= 0) remove(right, sym[nn]!, f);
      sym[pos] = newSym;
      sym[q] = -1;
      next[pos] = nn;
      if (nn >= 0) prev[nn] = pos;
      if (pp >= 0) add(sym[pp]!, newSym, pp, f);
      if (nn >= 0) add(newSym, sym[nn]!, pos, f);
    }
    pairPositions[best] = EMPTY;
    flushDirty();
    if (onProgress && pieces.length % 100 === 0) onProgress(pieces.length);
  }
  const merges = pieces.length;
  // Kept characters follow, most frequent first (alphabet order), continuing the scores.
  for (const c of alphabet.chars) pieces.push([String.fromCodePoint(c), -pieces.length]);
  return { pieces, merges };
}

/** Compares strings by code point (= UTF-8 byte order, which SentencePiece's std::string uses). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF, astral code points) sort after U+E000–FFFF in code-point order.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
