/**
 * ROUGE-L near-duplicate filter that stays fast at a million instructions.
 *
 * Stanford Alpaca drops a new instruction when its ROUGE-L F-measure with any kept instruction exceeds
 * 0.7, computing a quadratic-time LCS against every kept one (O(N) LCS per item, O(N²) per crawl).
 * Here:
 *  1. Text → token ids once (one token per CJK character, one per run of other letters/digits, lower
 *     case; rouge_score's own tokenizer would drop every Chinese character).
 *  2. F = 2·LCS/(m+n) > θ needs LCS > θ(m+n)/2 with LCS ≤ min(m, n), so a candidate's length n must lie
 *     in (θm/(2−θ), (2−θ)m/θ), and the two must share more than θm/(2−θ) tokens (multiset overlap
 *     ≥ LCS). An inverted index (token → items containing it) is probed only with the query's
 *     *rarest* distinct tokens, just enough of them that the multiset count of the unprobed ones is
 *     below that overlap: any item above the threshold must contain one of the probed tokens.
 *     Rare tokens have short posting lists, so few candidates are touched.
 *  3. Each surviving candidate gets an exact LCS with the bit-parallel algorithm of Hyyrö (2004):
 *     one pass over the candidate, O(n·⌈m/32⌉) word operations.
 * The answer is exact (same decision as comparing against every kept item), only faster.
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

export class RougeLIndex {
  private readonly vocab = new Map<string, number>();
  private postings: IntList[] = [];
  private readonly pool = new IntList(1 << 16); // all items' token ids, back to back
  private readonly offsets = new IntList(1 << 12); // item i = pool[offsets[i] .. offsets[i+1])
  private seen = new Int32Array(1 << 12); // per-item stamp of the last query that touched it
  private stamp = 0;
  // per-query bit masks: maskSlot[token] = row in masks (or -1)
  private maskSlot = new Int32Array(1 << 12).fill(-1);
  readonly stats: RougeStats = { queries: 0, candidatesChecked: 0, postingsScanned: 0 };

  constructor(readonly threshold = 0.7) {
    if (!(threshold > 0 && threshold < 1)) throw new RangeError(`ROUGE-L threshold must be in (0, 1), got ${threshold}`);
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
        this.postings.push(new IntList(2));
        if (id >= this.maskSlot.length) {
          const grown = new Int32Array(this.maskSlot.length * 2).fill(-1);
          grown.set(this.maskSlot);
          this.maskSlot = grown;
        }
      }
      ids[i] = id;
    }
    return ids;
  }

  /** Adds an item's tokens; returns its index. */
  add(ids: Int32Array): number {
    const index = this.size;
    for (let i = 0; i < ids.length; i++) this.pool.push(ids[i]);
    this.offsets.push(this.pool.length);
    if (index >= this.seen.length) {
      const grown = new Int32Array(this.seen.length * 2);
      grown.set(this.seen);
      this.seen = grown;
    }
    // one posting per distinct token
    const distinct = new Set<number>();
    for (let i = 0; i < ids.length; i++) distinct.add(ids[i]);
    for (const t of distinct) this.postings[t].push(index);
    return index;
  }

  /** Tokens of item i. */
  itemTokens(i: number): Int32Array {
    return this.pool.data.subarray(this.offsets.data[i], this.offsets.data[i + 1]);
  }

  /**
   * Index of some kept item whose ROUGE-L F with `ids` exceeds the threshold, with its score, or
   * undefined. Exact: agrees with a scan over every kept item.
   */
  findSimilar(ids: Int32Array): { index: number; score: number } | undefined {
    const m = ids.length;
    if (m === 0 || this.size === 0) return undefined;
    this.stats.queries++;
    const theta = this.threshold;
    const minLen = (theta * m) / (2 - theta); // n must be > this
    const maxLen = ((2 - theta) * m) / theta; // and < this
    const minOverlap = Math.floor((theta * m) / (2 - theta)) + 1;

    // distinct tokens with their multiplicity in the query, rarest first
    const counts = new Map<number, number>();
    for (let i = 0; i < m; i++) counts.set(ids[i], (counts.get(ids[i]) ?? 0) + 1);
    const distinct = [...counts.keys()].sort((x, y) => this.postings[x].length - this.postings[y].length);
    // probe tokens until the unprobed ones could not reach minOverlap on their own
    let remaining = m;
    let probeCount = 0;
    while (probeCount < distinct.length && remaining >= minOverlap) remaining -= counts.get(distinct[probeCount++])!;

    // bit masks of the query, one row of ⌈m/32⌉ words per distinct token
    const words = (m + 31) >>> 5;
    const masks = new Uint32Array(distinct.length * words);
    distinct.forEach((t, row) => (this.maskSlot[t] = row));
    for (let i = 0; i < m; i++) {
      const row = this.maskSlot[ids[i]];
      masks[row * words + (i >>> 5)] |= 1 << (i & 31);
    }
    const v = new Uint32Array(words);
    const lastBits = m & 31 ? (1 << (m & 31)) - 1 : 0xffffffff;

    this.stamp++;
    let found: { index: number; score: number } | undefined;
    try {
      for (let p = 0; p < probeCount && !found; p++) {
        const list = this.postings[distinct[p]];
        this.stats.postingsScanned += list.length;
        for (let k = 0; k < list.length; k++) {
          const j = list.data[k];
          if (this.seen[j] === this.stamp) continue;
          this.seen[j] = this.stamp;
          const start = this.offsets.data[j];
          const n = this.offsets.data[j + 1] - start;
          if (n <= minLen || n >= maxLen) continue;
          this.stats.candidatesChecked++;
          const lcs = this.bitParallelLcs(masks, words, lastBits, v, m, start, n);
          const score = rougeLF(lcs, m, n);
          if (score > theta) {
            found = { index: j, score };
            break;
          }
        }
      }
    } finally {
      for (const t of distinct) this.maskSlot[t] = -1;
    }
    return found;
  }

  /**
   * Hyyrö's bit-vector LCS: V starts all ones; for each candidate token y with query mask M_y,
   * V ← (V + (V & M_y)) | (V & ~M_y) as an m-bit integer; LCS = number of zero bits of V.
   */
  private bitParallelLcs(
    masks: Uint32Array,
    words: number,
    lastBits: number,
    v: Uint32Array,
    m: number,
    start: number,
    n: number,
  ): number {
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
