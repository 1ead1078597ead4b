/**
 * Seed pieces for unigram training (unigram_model_trainer.cc MakeSeedSentencePieces): every
 * substring that occurs at least twice and is right-maximal (an internal node of the suffix tree of
 * all sentences joined with a boundary), scored by occurrences × length, best `seedSize` kept.
 *
 * SentencePiece builds a full enhanced suffix array (esaxx). Pieces are at most
 * `maxSentencepieceLength` (≤ 16 by default) long, so we only need suffixes ordered by their first
 * `maxLen` characters: prefix doubling with radix sorts does that in a few O(n) passes, and the LCP
 * values, capped at maxLen + 1, are read off by direct comparison. An LCP interval of depth d ≤ maxLen
 * is exactly a suffix-tree node of depth d: same substrings, same occurrence counts.
 */
import { BOUNDARY_ID } from './corpus.js';

export interface SeedCandidates {
  /** Start offset in the text and length of each selected substring. */
  starts: Int32Array;
  lengths: Int32Array;
  /** occurrences × length. */
  scores: Float64Array;
}

/**
 * Suffix array of `text` ordered by the first `depth` symbols only (ties in any order).
 * `alphabetSize` bounds the symbol values.
 */
export function partialSuffixArray(text: Int32Array, alphabetSize: number, depth: number): Int32Array {
  const n = text.length;
  const sa = new Int32Array(n);
  let rank = new Int32Array(n);
  let tmp = new Int32Array(n);
  const count = new Int32Array(Math.max(alphabetSize, n) + 1);
  // Pass 0: counting sort by the first symbol.
  for (let i = 0; i < n; i++) count[text[i]! + 1]!++;
  for (let k = 1; k <= alphabetSize; k++) count[k]! += count[k - 1]!;
  for (let i = 0; i < n; i++) sa[count[text[i]!]!++] = i;
  let classes = 0;
  for (let j = 0; j < n; j++) {
    if (j > 0 && text[sa[j]!] !== text[sa[j - 1]!]) classes++;
    rank[sa[j]!] = classes;
  }
  classes++;
  for (let h = 1; h < depth && classes < n; h *= 2) {
    // Order by the second key (rank[i + h], missing = smallest), then stable counting sort by rank[i].
    let p = 0;
    for (let i = n - h; i < n; i++) tmp[p++] = i;
    for (let j = 0; j < n; j++) if (sa[j]! >= h) tmp[p++] = sa[j]! - h;
    count.fill(0, 0, classes + 1);
    for (let i = 0; i < n; i++) count[rank[i]! + 1]!++;
    for (let k = 1; k <= classes; k++) count[k]! += count[k - 1]!;
    for (let j = 0; j < n; j++) {
      const i = tmp[j]!;
      sa[count[rank[i]!]!++] = i;
    }
    // New classes: equal iff both halves are equal.
    const next = tmp;
    let c = 0;
    next[sa[0]!] = 0;
    for (let j = 1; j < n; j++) {
      const a = sa[j - 1]!;
      const b = sa[j]!;
      const ra2 = a + h < n ? rank[a + h]! : -1;
      const rb2 = b + h < n ? rank[b + h]! : -1;
      if (rank[a] !== rank[b] || ra2 !== rb2) c++;
      next[b] = c;
    }
    tmp = rank;
    rank = next;
    classes = c + 1;
  }
  return sa;
}

/**
 * Enumerates suffix-tree nodes of depth 2..maxLen that contain no sentence boundary and pass
 * `isValid`, keeping the `seedSize` best by occurrences × length.
 */
export function frequentSubstrings(
  text: Int32Array,
  alphabetSize: number,
  maxLen: number,
  seedSize: number,
  isValid: (start: number, len: number) => boolean,
): SeedCandidates {
  const n = text.length;
  const sa = partialSuffixArray(text, alphabetSize, maxLen);
  const cap = maxLen + 1;
  let cStart = new Int32Array(1 << 16);
  let cLen = new Int32Array(1 << 16);
  let cScore = new Float64Array(1 << 16);
  let nc = 0;
  const emit = (depth: number, lb: number, rb: number): void => {
    if (depth < 2 || depth > maxLen) return;
    const start = sa[lb]!;
    if (start + depth >= n) return;
    for (let k = 0; k < depth; k++) if (text[start + k] === BOUNDARY_ID) return;
    if (!isValid(start, depth)) return;
    if (nc >= cStart.length) {
      const a = new Int32Array(nc * 2);
      a.set(cStart);
      cStart = a;
      const b = new Int32Array(nc * 2);
      b.set(cLen);
      cLen = b;
      const c = new Float64Array(nc * 2);
      c.set(cScore);
      cScore = c;
    }
    cStart[nc] = start;
    cLen[nc] = depth;
    cScore[nc] = (rb - lb + 1) * depth;
    nc++;
  };
  // Bottom-up traversal of the LCP intervals (Abouelhoda, Kurtz & Ohlebusch 2004).
  const stackLcp: number[] = [0];
  const stackLb: number[] = [0];
  for (let j = 1; j <= n; j++) {
    let lcp = 0;
    if (j < n) {
      const a = sa[j - 1]!;
      const b = sa[j]!;
      while (lcp < cap && a + lcp < n && b + lcp < n && text[a + lcp] === text[b + lcp]) lcp++;
    }
    let lb = j - 1;
    while (lcp < stackLcp[stackLcp.length - 1]!) {
      const depth = stackLcp.pop()!;
      lb = stackLb.pop()!;
      emit(depth, lb, j - 1);
    }
    if (lcp > stackLcp[stackLcp.length - 1]!) {
      stackLcp.push(lcp);
      stackLb.push(lb);
    }
  }
  // Keep the best `seedSize` (ties at the cut: first enumerated).
  let keep: Int32Array;
  if (nc <= seedSize) {
    keep = new Int32Array(nc);
    for (let i = 0; i < nc; i++) keep[i] = i;
  } else {
    const idx = new Int32Array(nc);
    for (let i = 0; i < nc; i++) idx[i] = i;
    const sorted = Array.from(idx).sort((x, y) => cScore[y]! - cScore[x]! || x - y);
    keep = Int32Array.from(sorted.slice(0, seedSize));
  }
  const starts = new Int32Array(keep.length);
  const lengths = new Int32Array(keep.length);
  const scores = new Float64Array(keep.length);
  keep.forEach((k, i) => {
    starts[i] = cStart[k]!;
    lengths[i] = cLen[k]!;
    scores[i] = cScore[k]!;
  });
  return { starts, lengths, scores };
}
