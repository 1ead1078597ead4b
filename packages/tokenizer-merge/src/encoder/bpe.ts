/**
 * SentencePiece BPE segmentation (`bpe_model.cc`), exact and fast.
 *
 * The reference algorithm: split the normalized text into characters (user-defined symbols become
 * single frozen symbols), put every adjacent pair whose concatenation is a piece on an agenda, and
 * repeatedly merge the best pair — highest piece score, ties broken by the leftmost position —
 * re-adding the pairs the merge creates. Pieces of type UNUSED are finally split back into the two
 * symbols they were formed from.
 *
 * What makes it fast without changing the result:
 *  - Symbols are integers: a piece id, or for a character that is not itself a piece but occurs in
 *    one, an extra id. "Is left+right a piece" becomes one lookup in a pair → piece hash table
 *    built once from every split of every piece.
 *  - Independent segments. A merge across the boundary between characters x and y creates a piece
 *    that contains "xy", so where no piece contains "xy" no merge ever crosses. The text is cut at
 *    those boundaries; merges inside a segment happen in the same order as in the whole text (the
 *    agenda order restricted to one segment is the same), so encoding segments separately gives
 *    the same pieces. (Not used when the model has UNUSED pieces, whose resegmentation depends on
 *    the whole text, or user-defined symbols.)
 *  - Segments repeat (words, common phrases), so their ids are memoized.
 *  - The agenda is a binary heap over typed arrays; stale entries are skipped when popped, as the
 *    reference does.
 */
import { Emitter } from './emitter.js';
import { IntPairMap } from './int-pair-map.js';
import { UNUSED, type Vocabulary } from './model.js';
import type { PrefixMatcher } from './prefix-matcher.js';
import { SegmentCache } from './segment-cache.js';

/** Longer segments are encoded every time (they rarely repeat). */
const MAX_CACHED_SEGMENT = 48;
/** Marks a symbol merged into its left neighbour (distinct from every -(cp + 1)). */
const DEAD = -0x7fffffff;

export class BpeModel {
  private readonly vocab: Vocabulary;
  private readonly matcher: PrefixMatcher;
  private readonly pieceCount: number;
  /** Symbol id of each BMP character; -(cp + 1) for a character that occurs in no piece. */
  private readonly bmpSymbol = new Int32Array(0x10000);
  private readonly astralSymbol = new Map<number, number>();
  /** Code point of each extra (non-piece character) symbol id, indexed from pieceCount. */
  private readonly extraCodePoints: number[] = [];
  /** (left symbol, right symbol) → merged piece id. */
  private readonly pairs: IntPairMap;
  /** (symbol of x, symbol of y) present when some piece contains the characters "xy". */
  private readonly bigrams: IntPairMap;
  private readonly hasUnused: boolean;
  private readonly segmentable: boolean;
  private readonly cache = new SegmentCache();

  // Working arrays, reused between calls.
  private sym = new Int32Array(256);
  private textSyms = new Int32Array(1024);
  private nextIdx = new Int32Array(256);
  private prevIdx = new Int32Array(256);
  private frozen = new Uint8Array(256);
  private heap = new Int32Array(512);
  private eScore = new Float64Array(512);
  private eLeft = new Int32Array(512);
  private eRight = new Int32Array(512);
  private eA = new Int32Array(512);
  private eB = new Int32Array(512);
  private eMerged = new Int32Array(512);
  private heapSize = 0;
  private entryCount = 0;
  private readonly segmentIds: number[] = [];
  private revMerge = new Map<number, [number, number]>();

  constructor(vocab: Vocabulary, matcher: PrefixMatcher) {
    this.vocab = vocab;
    this.matcher = matcher;
    this.pieceCount = vocab.size;
    const { types } = vocab;
    for (let cp = 0; cp < 0x10000; cp++) this.bmpSymbol[cp] = -(cp + 1);
    // Single-character pieces are their own symbols.
    for (const [piece, id] of vocab.pieces) {
      const cp = piece.codePointAt(0)!;
      if (piece.length === (cp > 0xffff ? 2 : 1)) this.setSymbol(cp, id);
    }
    // Characters that occur in pieces without being pieces get extra symbol ids.
    let splitCount = 0;
    let hasUnused = false;
    for (const [piece, id] of vocab.pieces) {
      if (types[id] === UNUSED) hasUnused = true;
      for (const ch of piece) {
        const cp = ch.codePointAt(0)!;
        if (this.symbolOf(cp) < 0) {
          this.setSymbol(cp, this.pieceCount + this.extraCodePoints.length);
          this.extraCodePoints.push(cp);
        }
        splitCount++;
      }
    }
    this.hasUnused = hasUnused;
    this.segmentable = !hasUnused && matcher.empty;
    this.pairs = new IntPairMap(splitCount);
    this.bigrams = new IntPairMap(splitCount);
    for (const [piece, id] of vocab.pieces) {
      const chars = Array.from(piece);
      if (chars.length < 2) continue;
      let leftLen = 0;
      for (let k = 1; k < chars.length; k++) {
        const x = this.symbolOf(chars[k - 1].codePointAt(0)!);
        const y = this.symbolOf(chars[k].codePointAt(0)!);
        this.bigrams.setIfAbsent(x, y, 1);
        leftLen += chars[k - 1].length;
        const a = this.symbolOfString(piece.slice(0, leftLen));
        const b = this.symbolOfString(piece.slice(leftLen));
        if (a >= 0 && b >= 0) this.pairs.setIfAbsent(a, b, id);
      }
    }
  }

  private setSymbol(cp: number, id: number): void {
    if (cp < 0x10000) this.bmpSymbol[cp] = id;
    else this.astralSymbol.set(cp, id);
  }

  private symbolOf(cp: number): number {
    if (cp < 0x10000) return this.bmpSymbol[cp];
    const s = this.astralSymbol.get(cp);
    return s === undefined ? -(cp + 1) : s;
  }

  /** Symbol id of a string that can be a symbol: a piece, or a single character. */
  private symbolOfString(s: string): number {
    const id = this.vocab.pieces.get(s);
    if (id !== undefined) return id;
    const cp = s.codePointAt(0)!;
    if (s.length === (cp > 0xffff ? 2 : 1)) return this.symbolOf(cp);
    return -1; // several characters but not a piece: never a symbol
  }

  /** Symbols of the normalized text, segmentation and memo; see the class comment. */
  get isSegmentable(): boolean {
    return this.segmentable;
  }

  /** Encode a normalized string, appending ids to `emitter`. */
  encode(normalized: string, emitter: Emitter): void {
    if (normalized.length === 0) return;
    if (!this.segmentable) {
      this.encodeWhole(normalized, emitter);
      return;
    }
    const n = this.symbolize(normalized, false, false, this.symbolOf(0x20));
    this.encodeSymbols(n, emitter);
  }

  /**
   * The identity normalizer's output without building it: `text` is raw input; a space becomes
   * `wsSymbol` ("▁" or " "), which is also put in front (or behind) as the dummy prefix. Only for
   * segmentable models (no user-defined symbols).
   */
  encodeRaw(text: string, prefix: boolean, suffix: boolean, escapeWhitespaces: boolean, emitter: Emitter): void {
    if (text.length === 0) return;
    const ws = this.symbolOf(escapeWhitespaces ? 0x2581 : 0x20);
    const n = this.symbolize(text, prefix, suffix, ws);
    this.encodeSymbols(n, emitter);
  }

  /** Symbols of `text` into this.textSyms (negative: a character in no piece, -(cp + 1)). */
  private symbolize(text: string, prefix: boolean, suffix: boolean, spaceSymbol: number): number {
    const len = text.length;
    if (this.textSyms.length < len + 2) this.textSyms = new Int32Array(len * 2 + 2);
    const syms = this.textSyms;
    const bmp = this.bmpSymbol;
    let n = 0;
    if (prefix) syms[n++] = spaceSymbol;
    for (let i = 0; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x20) {
        syms[n++] = spaceSymbol;
      } else if (c < 0xd800 || c >= 0xe000) {
        syms[n++] = bmp[c];
      } else {
        // Surrogates: a pair is one astral character; a lone one is U+FFFD (what UTF-8 gets).
        const lo = i + 1 < len ? text.charCodeAt(i + 1) : 0;
        if (c < 0xdc00 && lo >= 0xdc00 && lo < 0xe000) {
          syms[n++] = this.symbolOf(((c - 0xd800) << 10) + (lo - 0xdc00) + 0x10000);
          i++;
        } else {
          syms[n++] = bmp[0xfffd];
        }
      }
    }
    if (suffix) syms[n++] = spaceSymbol;
    return n;
  }

  /** Cut textSyms[0, n) where no piece spans the boundary; encode each segment (memoized). */
  private encodeSymbols(n: number, emitter: Emitter): void {
    const syms = this.textSyms;
    const bigrams = this.bigrams;
    let segStart = 0;
    let prev = syms[0];
    for (let i = 1; i < n; i++) {
      const s = syms[i];
      if (prev < 0 || s < 0 || !bigrams.has(prev, s)) {
        this.emitSegment(segStart, i, emitter);
        segStart = i;
      }
      prev = s;
    }
    this.emitSegment(segStart, n, emitter);
  }

  private emitSegment(start: number, end: number, emitter: Emitter): void {
    const syms = this.textSyms;
    if (end - start === 1) {
      const s = syms[start];
      if (s >= 0 && s < this.pieceCount) emitter.emit(s);
      else emitter.emitUnknownChar(this.codePointOf(s));
      return;
    }
    const cache = this.cache;
    // Recording piece strings needs the characters behind unknown pieces, which the memo drops.
    const cacheable = end - start <= MAX_CACHED_SEGMENT && !emitter.recording;
    const hash = cacheable ? SegmentCache.hash(syms, start, end) : 0;
    if (cacheable) {
      const slot = cache.find(syms, start, end, hash);
      if (slot >= 0) {
        const pool = cache.valuePool;
        const from = cache.valueStart(slot);
        const to = from + cache.valueLength(slot);
        emitter.emitRange(pool, from, to);
        return;
      }
    }
    const count = this.loadSymbolIds(syms, start, end);
    this.merge(count);
    if (emitter.recording) {
      this.emitFinalSymbols(emitter);
      return;
    }
    const out = this.segmentIds;
    out.length = 0;
    for (let i = 0; i !== -1; i = this.nextIdx[i]) this.finalSymbol(i, out, emitter);
    if (cacheable) cache.insert(syms, start, end, hash, out);
    for (let k = 0; k < out.length; k++) emitter.emit(out[k]);
  }

  /** Code point of a symbol that is a single character (extra id or unknown character). */
  private codePointOf(s: number): number {
    return s >= this.pieceCount ? this.extraCodePoints[s - this.pieceCount] : -s - 1;
  }

  /** Empty the segment memo (benchmarks use it to measure cold runs). */
  clearCache(): void {
    this.cache.clear();
  }

  /** The whole text at once: with user-defined (frozen) symbols or UNUSED pieces. */
  private encodeWhole(text: string, emitter: Emitter): void {
    const n = this.loadSymbols(text, 0, text.length);
    this.merge(n);
    this.emitFinalSymbols(emitter);
    this.revMerge.clear();
  }

  /** Emit the merged symbols one by one (unknown characters with their text). */
  private emitFinalSymbols(emitter: Emitter): void {
    const out = this.segmentIds;
    for (let i = 0; i !== -1; i = this.nextIdx[i]) {
      const s = this.sym[i];
      if (s >= 0 && s < this.pieceCount) {
        out.length = 0;
        this.finalSymbol(i, out, emitter);
        for (const id of out) emitter.emit(id);
      } else {
        emitter.emitUnknownChar(this.codePointOf(s));
      }
    }
  }

  /** Ids of symbol `i` after merging, as `resegment` + `PopulateSentencePieceText` give them. */
  private finalSymbol(i: number, out: number[], emitter: Emitter): void {
    const s = this.sym[i];
    if (s >= 0 && s < this.pieceCount) {
      if (this.hasUnused && this.vocab.types[s] === UNUSED) this.resegment(s, out);
      else out.push(s);
    } else {
      emitter.unknownCharIds(this.codePointOf(s), out);
    }
  }

  private resegment(id: number, out: number[]): void {
    const split = this.vocab.types[id] === UNUSED ? this.revMerge.get(id) : undefined;
    if (split === undefined) {
      out.push(id);
      return;
    }
    for (const part of split) {
      if (part >= this.pieceCount) out.push(this.vocab.pieceToId(String.fromCodePoint(this.codePointOf(part))));
      else this.resegment(part, out);
    }
  }

  /** Initial symbols from symbol ids syms[start, end); returns their count. */
  private loadSymbolIds(syms: Int32Array, start: number, end: number): number {
    const n = end - start;
    this.ensureSymbols(n);
    const { sym, frozen, nextIdx, prevIdx } = this;
    for (let k = 0; k < n; k++) {
      sym[k] = syms[start + k];
      frozen[k] = 0;
      prevIdx[k] = k - 1;
      nextIdx[k] = k + 1;
    }
    nextIdx[n - 1] = -1;
    return n;
  }

  /** Split text[start, end) into initial symbols; returns their count. */
  private loadSymbols(text: string, start: number, end: number): number {
    this.ensureSymbols(end - start);
    const { sym, frozen, nextIdx, prevIdx } = this;
    const useMatcher = !this.matcher.empty;
    let n = 0;
    for (let i = start; i < end; ) {
      if (useMatcher) {
        const m = this.matcher.matchString(text, i);
        if (m > 0) {
          sym[n] = this.vocab.pieces.get(text.slice(i, i + m))!;
          frozen[n] = 1;
          prevIdx[n] = n - 1;
          nextIdx[n] = n + 1;
          n++;
          i += m;
          continue;
        }
      }
      let cp = text.charCodeAt(i);
      let width = 1;
      if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < end) {
        const lo = text.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = ((cp - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
          width = 2;
        }
      }
      sym[n] = this.symbolOf(cp);
      frozen[n] = 0;
      prevIdx[n] = n - 1;
      nextIdx[n] = n + 1;
      n++;
      i += width;
    }
    if (n > 0) nextIdx[n - 1] = -1;
    return n;
  }

  /** The agenda loop of `bpe::Model::SampleEncode` (without dropout). */
  private merge(n: number): void {
    this.heapSize = 0;
    this.entryCount = 0;
    for (let i = 1; i < n; i++) this.maybeAddPair(i - 1, i);
    // The entry arrays may be reallocated by maybeAddPair: read them through `this`.
    const { sym, nextIdx, prevIdx } = this;
    while (this.heapSize > 0) {
      const e = this.pop();
      const left = this.eLeft[e];
      const right = this.eRight[e];
      // Stale: one side was merged away or grew since this pair was added.
      if (sym[left] !== this.eA[e] || sym[right] !== this.eB[e]) continue;
      sym[left] = this.eMerged[e];
      const after = nextIdx[right];
      nextIdx[left] = after;
      if (after >= 0) prevIdx[after] = left;
      sym[right] = DEAD;
      this.maybeAddPair(prevIdx[left], left);
      this.maybeAddPair(left, after);
    }
  }

  private maybeAddPair(left: number, right: number): void {
    if (left < 0 || right < 0) return;
    const a = this.sym[left];
    const b = this.sym[right];
    if (a < 0 || b < 0 || this.frozen[left] || this.frozen[right]) return;
    const merged = this.pairs.get(a, b);
    if (merged < 0) return;
    if (this.entryCount === this.eLeft.length) this.growEntries();
    const e = this.entryCount++;
    this.eScore[e] = this.vocab.scores[merged];
    this.eLeft[e] = left;
    this.eRight[e] = right;
    this.eA[e] = a;
    this.eB[e] = b;
    this.eMerged[e] = merged;
    this.push(e);
    if (this.hasUnused && this.vocab.types[merged] === UNUSED) this.revMerge.set(merged, [a, b]);
  }

  /** Does entry x come out of the agenda before entry y? Higher score, then leftmost. */
  private before(x: number, y: number): boolean {
    const sx = this.eScore[x];
    const sy = this.eScore[y];
    return sx > sy || (sx === sy && this.eLeft[x] < this.eLeft[y]);
  }

  private push(e: number): void {
    const heap = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = e;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0];
    const last = heap[--this.heapSize];
    const size = this.heapSize;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.before(heap[child + 1], heap[child])) child++;
      if (!this.before(heap[child], last)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return top;
  }

  private ensureSymbols(n: number): void {
    if (n <= this.sym.length) return;
    let capacity = this.sym.length;
    while (capacity < n) capacity *= 2;
    this.sym = new Int32Array(capacity);
    this.nextIdx = new Int32Array(capacity);
    this.prevIdx = new Int32Array(capacity);
    this.frozen = new Uint8Array(capacity);
  }

  private growEntries(): void {
    const capacity = this.eLeft.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a);
      return b;
    };
    this.heap = grow(this.heap, (n) => new Int32Array(n));
    this.eScore = grow(this.eScore, (n) => new Float64Array(n));
    this.eLeft = grow(this.eLeft, (n) => new Int32Array(n));
    this.eRight = grow(this.eRight, (n) => new Int32Array(n));
    this.eA = grow(this.eA, (n) => new Int32Array(n));
    this.eB = grow(this.eB, (n) => new Int32Array(n));
    this.eMerged = grow(this.eMerged, (n) => new Int32Array(n));
  }
}
