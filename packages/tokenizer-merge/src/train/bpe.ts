/**
 * SentencePiece's BPE trainer (bpe_model_trainer.cc): start from characters, repeatedly merge the
 * most frequent adjacent pair of symbols (ties: shorter piece, then the lexicographically smaller
 * piece), never forming a piece that IsValidSentencePiece rejects, until the vocabulary is full.
 * Scores are -(order of creation); the kept characters follow the merged pieces, most frequent first.
 *
 * SentencePiece rescans a sample of "active" pairs every 100 merges; here pair counts are kept exact
 * with incremental updates and a lazy max-heap, which picks the same piece SentencePiece's exhaustive
 * rule would and costs time proportional to the occurrences actually touched.
 *
 * The steps: `initialSymbols`, `linkPositions` (the words as linked symbol lists), `countPairs` into a
 * `PairTable`, then per merge `PairHeap.popBest` and `applyMerge`.
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
const INITIAL_PAIRS = 1 << 16;
/** The occurrence list of a pair that has none (invalid, or merged). */
const EMPTY: number[] = [];

/** Symbols: 0 (reserved), 1 (unknown), the alphabet's characters, then each merged piece. */
interface Symbols {
  cps: number[][];
  str: string[];
}

function initialSymbols(alphabet: Alphabet): Symbols {
  const cps: number[][] = [[], []];
  const str: string[] = ['', ''];
  for (const c of alphabet.chars) {
    cps.push([c]);
    str.push(String.fromCodePoint(c));
  }
  return { cps, str };
}

/** One slot per character of every word, linked into the word's current symbols. */
interface Positions {
  sym: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  word: Int32Array;
}

function linkPositions(words: WordCounts): Positions {
  const n = words.data.length;
  const sym = new Int32Array(n);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const word = new Int32Array(n);
  for (let w = 0; w < words.freqs.length; w++) {
    const s = words.offsets[w]!;
    const e = words.offsets[w + 1]!;
    for (let i = s; i < e; i++) {
      sym[i] = words.data[i]!;
      next[i] = i + 1 < e ? i + 1 : -1;
      prev[i] = i > s ? i - 1 : -1;
      word[i] = w;
    }
  }
  return { sym, next, prev, word };
}

const PAIR_INVALID = 0;
const PAIR_LIVE = 1;
/** merged, or a duplicate string */
const PAIR_USED = 2;

function grown<T extends Int32Array | Uint8Array | Float64Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/**
 * Every adjacent symbol pair ever seen: its count (kept exact as merges rewrite the words), its
 * occurrences (positions of its left symbol; stale ones are skipped when merged) and whether it may
 * become a piece. Pairs whose count rose since the last `flush` are queued for the heap.
 */
class PairTable {
  private readonly index = new Map<number, number>();
  left = new Int32Array(INITIAL_PAIRS);
  right = new Int32Array(INITIAL_PAIRS);
  freq = new Float64Array(INITIAL_PAIRS);
  /** the merged piece's length in characters */
  len = new Int32Array(INITIAL_PAIRS);
  state = new Uint8Array(INITIAL_PAIRS);
  private dirtyFlag = new Uint8Array(INITIAL_PAIRS);
  private readonly str: string[] = [];
  readonly positions: number[][] = [];
  private count = 0;
  private readonly dirty: number[] = [];

  constructor(
    private readonly symbols: Symbols,
    private readonly rules: PieceRules,
  ) {}

  /** The merged piece's text (computed once). */
  string(p: number): string {
    let str = this.str[p]!;
    if (str === '') str = this.str[p] = this.symbols.str[this.left[p]!]! + this.symbols.str[this.right[p]!]!;
    return str;
  }

  private get(left: number, right: number): number {
    const key = left * SYMBOL_LIMIT + right;
    let p = this.index.get(key);
    if (p !== undefined) return p;
    p = this.count++;
    if (p >= this.left.length) this.grow();
    this.left[p] = left;
    this.right[p] = right;
    let valid = left !== UNK_ID && right !== UNK_ID;
    if (valid) {
      const cps = this.symbols.cps[left]!.concat(this.symbols.cps[right]!);
      valid = isValidPiece(cps, this.rules);
      this.len[p] = cps.length;
    }
    this.state[p] = valid ? PAIR_LIVE : PAIR_INVALID;
    this.str.push('');
    this.positions.push(valid ? [] : EMPTY);
    this.index.set(key, p);
    return p;
  }

  private grow(): void {
    const cap = this.left.length * 2;
    this.left = grown(this.left, cap);
    this.right = grown(this.right, cap);
    this.len = grown(this.len, cap);
    this.state = grown(this.state, cap);
    this.dirtyFlag = grown(this.dirtyFlag, cap);
    this.freq = grown(this.freq, cap);
  }

  /** One more occurrence (at `pos`, weight `f`) of the pair (left, right). */
  add(left: number, right: number, pos: number, f: number): void {
    const p = this.get(left, right);
    if (this.state[p] !== PAIR_LIVE) return;
    this.freq[p] += f;
    this.positions[p]!.push(pos);
    if (!this.dirtyFlag[p]) {
      this.dirtyFlag[p] = 1;
      this.dirty.push(p);
    }
  }

  /** One occurrence fewer; its heap entry now over-states it and is fixed when it reaches the top. */
  remove(left: number, right: number, f: number): void {
    const p = this.index.get(left * SYMBOL_LIMIT + right);
    if (p === undefined || this.state[p] !== PAIR_LIVE) return;
    this.freq[p] -= f;
  }

  /** Pushes every pair whose count rose since the last flush, in the order they rose. */
  flush(heap: PairHeap): void {
    for (const p of this.dirty) {
      this.dirtyFlag[p] = 0;
      if (this.state[p] === PAIR_LIVE && this.freq[p]! > 0) heap.push(this.freq[p]!, p);
    }
    this.dirty.length = 0;
  }
}

/**
 * Max-heap of (frequency snapshot, pair), best = highest count, then the shorter piece, then the
 * smaller string (code points). Invariant: every live pair has an entry whose snapshot is >= its
 * current count (pushed when the count rises; decreases push nothing). So an entry at the top whose
 * snapshot equals the current count is the true maximum.
 */
class PairHeap {
  private f = new Float64Array(INITIAL_PAIRS);
  private p = new Int32Array(INITIAL_PAIRS);
  private size = 0;

  constructor(private readonly pairs: PairTable) {}

  private better(fa: number, pa: number, fb: number, pb: number): boolean {
    if (fa !== fb) return fa > fb;
    const la = this.pairs.len[pa]!;
    const lb = this.pairs.len[pb]!;
    if (la !== lb) return la < lb;
    return compareCodePoints(this.pairs.string(pa), this.pairs.string(pb)) < 0;
  }

  push(f: number, p: number): void {
    if (this.size >= this.f.length) {
      this.f = grown(this.f, this.f.length * 2);
      this.p = grown(this.p, this.p.length * 2);
    }
    const { f: heapF, p: heapP } = this;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(f, p, heapF[parent]!, heapP[parent]!)) break;
      heapF[i] = heapF[parent]!;
      heapP[i] = heapP[parent]!;
      i = parent;
    }
    heapF[i] = f;
    heapP[i] = p;
  }

  private pop(): void {
    const { f: heapF, p: heapP } = this;
    const f = heapF[--this.size]!;
    const p = heapP[this.size]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && this.better(heapF[c + 1]!, heapP[c + 1]!, heapF[c]!, heapP[c]!)) c++;
      if (!this.better(heapF[c]!, heapP[c]!, f, p)) break;
      heapF[i] = heapF[c]!;
      heapP[i] = heapP[c]!;
      i = c;
    }
    heapF[i] = f;
    heapP[i] = p;
  }

  /** The live pair with the highest current count (ties as `better`), or -1 when none is left. */
  popBest(): number {
    const pairs = this.pairs;
    while (this.size > 0) {
      const f = this.f[0]!;
      const p = this.p[0]!;
      this.pop();
      if (pairs.state[p] !== PAIR_LIVE) continue;
      const current = pairs.freq[p]!;
      if (current === f && f > 0) return p;
      // Stale snapshot (counts only went down since): re-queue at the true count.
      if (current > 0 && current < f) this.push(current, p);
    }
    return -1;
  }
}

/** Counts every adjacent pair of the words' characters. */
function countPairs(positions: Positions, words: WordCounts, pairs: PairTable): void {
  const { sym, next, word } = positions;
  for (let i = 0; i < sym.length; i++) {
    const j = next[i]!;
    if (j >= 0) pairs.add(sym[i]!, sym[j]!, i, words.freqs[word[i]!]!);
  }
}

/**
 * Rewrites every occurrence of pair `best` (= new symbol `newSym`) in the words, moving the counts of
 * the pairs around each occurrence from the old symbols to the new one.
 */
function applyMerge(best: number, newSym: number, positions: Positions, words: WordCounts, pairs: PairTable): void {
  const { sym, next, prev, word } = positions;
  const left = pairs.left[best]!;
  const right = pairs.right[best]!;
  for (const pos of pairs.positions[best]!) {
    if (sym[pos] !== left) continue;
    const q = next[pos]!;
    if (q < 0 || sym[q] !== right) continue;
    const f = words.freqs[word[pos]!]!;
    const pp = prev[pos]!;
    const nn = next[q]!;
    if (pp >= 0) pairs.remove(sym[pp]!, left, f);
    if (nn >= 0) pairs.remove(right, sym[nn]!, f);
    sym[pos] = newSym;
    sym[q] = -1;
    next[pos] = nn;
    if (nn >= 0) prev[nn] = pos;
    if (pp >= 0) pairs.add(sym[pp]!, newSym, pp, f);
    if (nn >= 0) pairs.add(newSym, sym[nn]!, pos, f);
  }
  pairs.positions[best] = EMPTY;
}

export function trainBpe(words: WordCounts, alphabet: Alphabet, rules: PieceRules, numMerges: number, onProgress?: (merges: number) => void): BpeResult {
  const symbols = initialSymbols(alphabet);
  const positions = linkPositions(words);
  const pairs = new PairTable(symbols, rules);
  const heap = new PairHeap(pairs);
  countPairs(positions, words, pairs);
  pairs.flush(heap);

  const pieces: Array<[string, number]> = [];
  const seen = new Set<string>();
  while (pieces.length < numMerges) {
    const best = heap.popBest();
    if (best < 0) break; // no valid pair left: the corpus supports no larger vocabulary
    pairs.state[best] = PAIR_USED;
    const str = pairs.string(best);
    if (seen.has(str)) continue; // the same string reached by another merge path
    seen.add(str);
    pieces.push([str, -pieces.length]);
    const newSym = symbols.cps.length;
    symbols.cps.push(symbols.cps[pairs.left[best]!]!.concat(symbols.cps[pairs.right[best]!]!));
    symbols.str.push(str);
    applyMerge(best, newSym, positions, words, pairs);
    pairs.flush(heap);
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
