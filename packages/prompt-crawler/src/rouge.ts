/**
 * ROUGE-L near-duplicate filter that stays fast at a million instructions.
 *
 * Stanford Alpaca drops a new instruction when its ROUGE-L F-measure with any kept instruction exceeds
 * 0.7, computing an LCS against every kept one (O(N) LCS per item, O(N²) per crawl). Here:
 *  1. Text → token ids once (one token per CJK character, one per run of other letters/digits, lower
 *     case; rouge_score's own tokenizer would drop every Chinese character).
 *  2. Length filter: F = 2·LCS/(m+n) > θ with LCS ≤ min(m, n) means a candidate's length n lies in
 *     (θm/(2−θ), (2−θ)m/θ).
 *  3. Prefix filter (as in set-similarity joins): LCS ≤ multiset overlap, so a match needs an overlap of
 *     more than θ·len/(2−θ) elements — elements are (token, occurrence number) pairs, which turns
 *     multisets into sets. Order all elements globally, rarest token first. If two sets share o
 *     elements, the first shared element lies within the first |X|−o+1 elements of each; so every kept
 *     item indexes only its first n − ⌊θn/(2−θ)⌋ elements (its rarest ≈46% at θ=0.7) and a query
 *     probes only its own first m − ⌊θm/(2−θ)⌋. Rare tokens have short posting lists and common ones
 *     are rarely in anyone's prefix, so few candidates come out.
 *     Positional filter (PPJoin): the first shared element found at query position i and item position
 *     j bounds the overlap by 1 + min(m−i−1, n−j−1); candidates that cannot reach the needed overlap
 *     are skipped without computing anything.
 *  4. Each remaining candidate gets an exact LCS with Hyyrö's bit-parallel algorithm (2004): one pass over the
 *     candidate, O(n·⌈m/32⌉) word operations.
 * The global order is token document frequency, recomputed (and the index rebuilt, O(total tokens))
 * when the index reaches 1k, 2k, 4k … 128k items and frozen after that; tokens first seen later go
 * last. Any fixed order keeps the filter exact, so the decision is always the same as comparing
 * against every kept item — only the speed depends on the order.
 */

const CJK_OR_WORD = /[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|(?:(?![\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af])[\p{L}\p{N}])+/gu;

/** ROUGE tokens of a text (strings); see tokenIds for the interned form. */
export function rougeTokens(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(CJK_OR_WORD) ?? [];
}

/** Reference LCS by dynamic programming (used to check the fast one). */
export function lcsLengthDP(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const prev = new Int32Array(b.length + 1);
  const cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    prev.set(cur);
  }
  return prev[b.length];
}

/** ROUGE-L F-measure as rouge_score computes it (P = LCS/|pred|, R = LCS/|target|, F = 2PR/(P+R)). */
export function rougeLF(lcs: number, m: number, n: number): number {
  return m === 0 || n === 0 || lcs === 0 ? 0 : (2 * lcs) / (m + n);
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Growable Int32 list (posting lists and the token pool). */
class IntList {
  data: Int32Array;
  length = 0;
  constructor(capacity = 4) {
    this.data = new Int32Array(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

export interface RougeStats {
  queries: number;
  candidatesChecked: number;
  postingsScanned: number;
}

const OCC_BITS = 8; // element key = token << 8 | occurrence (occurrences past 255 are ignored)
const MAX_OCC = (1 << OCC_BITS) - 1;
const DONE = 1 << 30; // hits value of a candidate already verified or ruled out in this query
export interface RougeIndexOptions {
  /** size at which tokens are first re-ranked by frequency (then at every doubling) */
  firstRebuildAt?: number;
  /** no re-ranking past this size */
  freezeAt?: number;
}

export class RougeLIndex {
  private readonly vocab = new Map<string, number>();
  private df = new Int32Array(1 << 12); // items containing each token
  private rank = new Int32Array(1 << 12); // global order of tokens (smaller = earlier = rarer)
  private occScratch = new Int32Array(1 << 12);
  private postings = new Map<number, IntList>(); // element key → items whose prefix holds it
  private readonly pool = new IntList(1 << 16); // all items' token ids, back to back
  private readonly offsets = new IntList(1 << 12); // item i = pool[offsets[i] .. offsets[i+1])
  private seen = new Int32Array(1 << 12); // per-item stamp of the last query that touched it
  private hits = new Int32Array(1 << 12); // shared elements met so far in this query (valid when seen)
  private stamp = 0;
  private nextRebuild: number;
  private readonly freezeAt: number;
  // per-query bit masks: maskSlot[token] = row in masks (or -1)
  private maskSlot = new Int32Array(1 << 12).fill(-1);
  readonly stats: RougeStats = { queries: 0, candidatesChecked: 0, postingsScanned: 0 };
  private readonly ratio: number;

  constructor(
    readonly threshold = 0.7,
    options: RougeIndexOptions = {},
  ) {
    if (!(threshold > 0 && threshold < 1)) throw new RangeError(`ROUGE-L threshold must be in (0, 1), got ${threshold}`);
    this.nextRebuild = options.firstRebuildAt ?? 1024;
    this.freezeAt = options.freezeAt ?? 1 << 17;
    this.ratio = threshold / (2 - threshold);
    this.offsets.push(0);
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  /** Interns the text's tokens (new tokens get new ids). */
  tokenIds(text: string): Int32Array {
    const toks = rougeTokens(text);
    const ids = new Int32Array(toks.length);
    for (let i = 0; i < toks.length; i++) {
      let id = this.vocab.get(toks[i]);
      if (id === undefined) {
        id = this.vocab.size;
        this.vocab.set(toks[i], id);
        if (id >= this.maskSlot.length) {
          const cap = this.maskSlot.length * 2;
          const slot = new Int32Array(cap).fill(-1);
          slot.set(this.maskSlot);
          this.maskSlot = slot;
          const df = new Int32Array(cap);
          df.set(this.df);
          this.df = df;
          const rank = new Int32Array(cap);
          rank.set(this.rank);
          this.rank = rank;
          this.occScratch = new Int32Array(cap);
        }
        // a token first seen after the last re-ranking goes last: it has no postings to probe yet
        this.rank[id] = id;
      }
      ids[i] = id;
    }
    return ids;
  }

  /**
   * (token, occurrence) elements of a token sequence in the global order, as keys rank·256 + occurrence
   * (ranks are a permutation of token ids, so a key names one element until the next re-ranking,
   * which rebuilds every posting list).
   */
  private sortedElements(ids: ArrayLike<number>): Float64Array {
    const occ = this.occScratch;
    const keys = new Float64Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i];
      const k = occ[t]++;
      if (k <= MAX_OCC) keys[n++] = this.rank[t] * (MAX_OCC + 1) + k;
    }
    for (let i = 0; i < ids.length; i++) occ[ids[i]] = 0;
    return keys.subarray(0, n).sort();
  }

  /** Elements an item (or query) of n tokens must index (or probe). */
  private prefixLength(n: number): number {
    return n - Math.floor(this.ratio * n);
  }

  private indexItem(i: number): void {
    const toks = this.itemTokens(i);
    const elems = this.sortedElements(toks);
    // one element past the prefix, so that a match meets two shared elements (see findSimilar)
    const p = Math.min(elems.length, this.prefixLength(toks.length) + 1);
    for (let k = 0; k < p; k++) {
      let list = this.postings.get(elems[k]);
      if (!list) this.postings.set(elems[k], (list = new IntList(4)));
      list.push(i);
      // the item's length and the element's position in it, so that the length and positional
      // filters run on the posting list alone (no random access into per-item arrays)
      list.push((toks.length << 8) | Math.min(k, 255));
    }
  }

  /** Re-ranks tokens by document frequency (rarest first) and rebuilds all posting lists. */
  private rebuild(): void {
    const n = this.vocab.size;
    const order = Array.from({ length: n }, (_, t) => t).sort((a, b) => this.df[a] - this.df[b] || a - b);
    order.forEach((t, r) => (this.rank[t] = r));
    this.postings = new Map();
    for (let i = 0; i < this.size; i++) this.indexItem(i);
  }

  /** Adds an item's tokens; returns its index. */
  add(ids: Int32Array): number {
    if (ids.length >= 1 << 23) throw new RangeError(`an instruction of ${ids.length} tokens is too long for the ROUGE-L index`);
    const index = this.size;
    for (let i = 0; i < ids.length; i++) this.pool.push(ids[i]);
    this.offsets.push(this.pool.length);
    if (index >= this.seen.length) {
      const grown = new Int32Array(this.seen.length * 2);
      grown.set(this.seen);
      this.seen = grown;
      this.hits = new Int32Array(grown.length);
    }
    for (const t of new Set(ids)) this.df[t]++;
    if (this.size === this.nextRebuild && this.size <= this.freezeAt) {
      this.nextRebuild *= 2;
      this.rebuild();
    } else this.indexItem(index);
    return index;
  }

  /** Tokens of item i. */
  itemTokens(i: number): Int32Array {
    return this.pool.data.subarray(this.offsets.data[i], this.offsets.data[i + 1]);
  }

  /**
   * Some kept item whose ROUGE-L F with `ids` exceeds the threshold, with its score, or undefined.
   * Exact: agrees with a scan over every kept item.
   */
  findSimilar(ids: Int32Array): { index: number; score: number } | undefined {
    const m = ids.length;
    if (m === 0 || this.size === 0) return undefined;
    this.stats.queries++;
    const theta = this.threshold;
    const minLen = this.ratio * m; // n must be > this
    const maxLen = m / this.ratio; // and < this
    const elems = this.sortedElements(ids);
    // a match shares at least two elements when m >= 2, and the first two lie one element further in
    const needHits = m >= 2 ? 2 : 1;
    const probe = Math.min(elems.length, this.prefixLength(m) + needHits - 1);

    // bit masks of the query, one row of ⌈m/32⌉ words per distinct token
    const distinct: number[] = [];
    for (let i = 0; i < m; i++) if (this.maskSlot[ids[i]] < 0) this.maskSlot[ids[i]] = distinct.push(ids[i]) - 1;
    const words = (m + 31) >>> 5;
    const masks = new Uint32Array(distinct.length * words);
    for (let i = 0; i < m; i++) masks[this.maskSlot[ids[i]] * words + (i >>> 5)] |= 1 << (i & 31);
    const v = new Uint32Array(words);
    const lastBits = m & 31 ? (1 << (m & 31)) - 1 : 0xffffffff;

    this.stamp++;
    try {
      for (let p = 0; p < probe; p++) {
        const list = this.postings.get(elems[p]);
        if (!list) continue;
        this.stats.postingsScanned += list.length >>> 1;
        const data = list.data;
        for (let k = 0; k < list.length; k += 2) {
          const packed = data[k + 1];
          const n = packed >>> 8;
          if (n <= minLen || n >= maxLen) continue;
          const j = data[k];
          let hits: number;
          if (this.seen[j] !== this.stamp) {
            this.seen[j] = this.stamp;
            hits = 1;
          } else {
            hits = this.hits[j] + 1;
            if (hits > needHits) continue; // already verified or ruled out
          }
          // Positional filter: shared elements are met in global order and every one before this one
          // has been met (it precedes this one in both prefixes), so the overlap is at most
          // hits + what follows position p in the query and position j in the item.
          // (A clamped j only loosens the bound.)
          if (hits + Math.min(m - p - 1, n - (packed & 255) - 1) < Math.floor((theta * (m + n)) / 2 - 1e-9) + 1) {
            this.hits[j] = DONE;
            continue;
          }
          this.hits[j] = hits;
          if (hits < needHits) continue;
          this.hits[j] = DONE;
          const start = this.offsets.data[j];
          this.stats.candidatesChecked++;
          const lcs = this.bitParallelLcs(masks, words, lastBits, v, m, start, n);
          const score = rougeLF(lcs, m, n);
          if (score > theta) return { index: j, score };
        }
      }
      return undefined;
    } finally {
      for (const t of distinct) this.maskSlot[t] = -1;
    }
  }

  /**
   * Hyyrö's bit-vector LCS: V starts all ones; for each candidate token y with query mask M_y,
   * V ← (V + (V & M_y)) | (V & ~M_y) as an m-bit integer; LCS = number of zero bits of V.
   */
  private bitParallelLcs(masks: Uint32Array, words: number, lastBits: number, v: Uint32Array, m: number, start: number, n: number): number {
    v.fill(0xffffffff);
    const pool = this.pool.data;
    for (let k = 0; k < n; k++) {
      const row = this.maskSlot[pool[start + k]];
      if (row < 0) continue; // token absent from the query: V & M = 0, V unchanged
      const base = row * words;
      let carry = 0;
      for (let w = 0; w < words; w++) {
        const vw = v[w];
        const u = vw & masks[base + w];
        const sum = vw + (u >>> 0) + carry;
        carry = sum > 0xffffffff ? 1 : 0;
        v[w] = ((sum >>> 0) | (vw & ~masks[base + w])) >>> 0;
      }
    }
    let ones = 0;
    for (let w = 0; w < words - 1; w++) ones += popcount32(v[w]);
    ones += popcount32(v[words - 1] & lastBits);
    return m - ones;
  }

  /** LCS of a query with kept item i via the bit-parallel path (exposed for tests). */
  lcsWith(ids: Int32Array, i: number): number {
    const m = ids.length;
    if (m === 0) return 0;
    const counts = new Set<number>(ids);
    const distinct = [...counts];
    const words = (m + 31) >>> 5;
    const masks = new Uint32Array(distinct.length * words);
    distinct.forEach((t, row) => (this.maskSlot[t] = row));
    for (let k = 0; k < m; k++) masks[this.maskSlot[ids[k]] * words + (k >>> 5)] |= 1 << (k & 31);
    try {
      const start = this.offsets.data[i];
      const n = this.offsets.data[i + 1] - start;
      return this.bitParallelLcs(masks, words, m & 31 ? (1 << (m & 31)) - 1 : 0xffffffff, new Uint32Array(words), m, start, n);
    } finally {
      for (const t of distinct) this.maskSlot[t] = -1;
    }
  }
}
