/**
 * SentencePiece's unigram trainer (unigram_model_trainer.cc):
 *  1. seed pieces: all characters + the most frequent substrings (./seeds.ts), scored by log frequency;
 *  2. EM: E-step = expected piece counts by forward–backward over every word's lattice, M-step =
 *     Bayesian (digamma) re-estimation dropping pieces expected less than 0.5 times; two sub-iterations;
 *  3. pruning: drop the pieces whose removal loses the least likelihood (each piece's loss estimated
 *     from its second-best segmentation) to max(vocab × 1.1, 75 % of the current size); repeat 2–3;
 *  4. final: kept characters + the best-scoring pieces up to the vocabulary size.
 *
 * Pieces keep their seed index for the whole run: the trie over the seeds is built once and
 * pruning only switches pieces off, so no lattice structure is ever rebuilt.
 */
import type { Alphabet, WordCounts } from './corpus.js';
import { compareCodePoints } from './bpe.js';
import { frequentSubstrings } from './seeds.js';

export interface UnigramOptions {
  vocabSize: number; // pieces to produce (vocabulary size minus meta pieces)
  desiredSize: number; // stop EM once the model is at most this large (vocab_size × 1.1)
  seedSentencepieceSize: number;
  shrinkingFactor: number;
  numSubIterations: number;
  maxPieceLength: number;
  /** Validity of the substring text[start..start+len) as a piece. */
  isValid: (start: number, len: number) => boolean;
  onProgress?: (stage: string, pieces: number) => void;
}

export interface UnigramResult {
  pieces: Array<[string, number]>;
  seedCount: number;
  emRounds: number;
}

const UNK_PENALTY = 10;
const EXPECTED_FREQUENCY_THRESHOLD = 0.5;
const MIN_SCORE_PENALTY_DELTA = 0.0001;

export function digamma(x: number): number {
  let result = 0;
  for (; x < 7; ++x) result -= 1 / x;
  x -= 1 / 2;
  const xx = 1 / x;
  const xx2 = xx * xx;
  const xx4 = xx2 * xx2;
  result += Math.log(x) + (1 / 24) * xx2 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
  return result;
}

/** A trie over dense character ids: root children in an array, deeper edges in an open-addressing table. */
class PieceTrie {
  readonly rootChild: Int32Array;
  private keyNode: Int32Array;
  private keyChar: Int32Array;
  private child: Int32Array;
  private mask: number;
  private used = 0;
  nodePiece: Int32Array;
  numNodes = 1;

  constructor(alphabetSize: number, expectedNodes: number) {
    this.rootChild = new Int32Array(alphabetSize).fill(-1);
    let cap = 1 << 16;
    while (cap < expectedNodes * 1.6) cap *= 2;
    this.keyNode = new Int32Array(cap).fill(-1);
    this.keyChar = new Int32Array(cap);
    this.child = new Int32Array(cap);
    this.mask = cap - 1;
    this.nodePiece = new Int32Array(Math.max(16, expectedNodes)).fill(-1);
  }

  private slot(node: number, c: number): number {
    return (Math.imul(node, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b)) & this.mask;
  }

  childOf(node: number, c: number): number {
    if (node === 0) return this.rootChild[c]!;
    let s = this.slot(node, c);
    const keyNode = this.keyNode;
    for (;;) {
      const k = keyNode[s]!;
      if (k === -1) return -1;
      if (k === node && this.keyChar[s] === c) return this.child[s]!;
      s = (s + 1) & this.mask;
    }
  }

  private addChild(node: number, c: number): number {
    const id = this.numNodes++;
    if (id >= this.nodePiece.length) {
      const np = new Int32Array(this.nodePiece.length * 2).fill(-1);
      np.set(this.nodePiece);
      this.nodePiece = np;
    }
    if (node === 0) {
      this.rootChild[c] = id;
      return id;
    }
    if ((this.used + 1) * 1.4 > this.keyNode.length) this.rehash();
    let s = this.slot(node, c);
    while (this.keyNode[s] !== -1) s = (s + 1) & this.mask;
    this.keyNode[s] = node;
    this.keyChar[s] = c;
    this.child[s] = id;
    this.used++;
    return id;
  }

  private rehash(): void {
    const oldNode = this.keyNode;
    const oldChar = this.keyChar;
    const oldChild = this.child;
    const cap = oldNode.length * 2;
    this.keyNode = new Int32Array(cap).fill(-1);
    this.keyChar = new Int32Array(cap);
    this.child = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < oldNode.length; i++) {
      if (oldNode[i] === -1) continue;
      let s = this.slot(oldNode[i]!, oldChar[i]!);
      while (this.keyNode[s] !== -1) s = (s + 1) & this.mask;
      this.keyNode[s] = oldNode[i]!;
      this.keyChar[s] = oldChar[i]!;
      this.child[s] = oldChild[i]!;
    }
  }

  insert(seq: Int32Array, start: number, len: number, piece: number): void {
    let node = 0;
    for (let k = 0; k < len; k++) {
      const c = seq[start + k]!;
      let next = this.childOf(node, c);
      if (next < 0) next = this.addChild(node, c);
      node = next;
    }
    this.nodePiece[node] = piece;
  }
}

/** Reusable buffers for one word's lattice. */
class Lattice {
  edgeStart = new Int32Array(1024);
  edgeEnd = new Int32Array(1024);
  edgePiece = new Int32Array(1024);
  edgeScore = new Float64Array(1024);
  numEdges = 0;
  /** First edge index of each start position (length + 1 entries). */
  firstEdge = new Int32Array(256);
  alpha = new Float64Array(256);
  beta = new Float64Array(256);
  acc = new Float64Array(256);
  ref = new Float64Array(256);
  bestScore = new Float64Array(256);
  bestEdge = new Int32Array(256);

  reserve(len: number, maxPieceLength: number): void {
    if (len + 2 > this.alpha.length) {
      const m = Math.max(len + 2, this.alpha.length * 2);
      this.firstEdge = new Int32Array(m);
      this.alpha = new Float64Array(m);
      this.beta = new Float64Array(m);
      this.acc = new Float64Array(m);
      this.ref = new Float64Array(m);
      this.bestScore = new Float64Array(m);
      this.bestEdge = new Int32Array(m);
    }
    const e = (len + 1) * (maxPieceLength + 1);
    if (e > this.edgeStart.length) {
      const m = Math.max(e, this.edgeStart.length * 2);
      this.edgeStart = new Int32Array(m);
      this.edgeEnd = new Int32Array(m);
      this.edgePiece = new Int32Array(m);
      this.edgeScore = new Float64Array(m);
    }
  }
}

interface Model {
  trie: PieceTrie;
  score: Float64Array; // by piece id
  active: Uint8Array;
  minScore: number;
  maxPieceLength: number;
}

/**
 * Builds the lattice of seq[start..start+len) with the active pieces; a position with no
 * single-character piece gets an unknown edge (piece -1) scored minScore - 10, as SentencePiece does.
 * `skipWhole` (prune step) leaves out the edge covering the whole sequence.
 */
function buildLattice(lat: Lattice, model: Model, seq: Int32Array, start: number, len: number, skipWhole = -1): void {
  lat.reserve(len, model.maxPieceLength);
  const { trie, active, score, maxPieceLength } = model;
  const unkScore = model.minScore - UNK_PENALTY;
  const nodePiece = trie.nodePiece;
  let e = 0;
  for (let i = 0; i < len; i++) {
    lat.firstEdge[i] = e;
    let node = trie.rootChild[seq[start + i]!]!;
    let depth = 1;
    let hasSingle = false;
    while (node >= 0) {
      const pid = nodePiece[node]!;
      if (pid >= 0 && active[pid] && pid !== skipWhole) {
        lat.edgeStart[e] = i;
        lat.edgeEnd[e] = i + depth;
        lat.edgePiece[e] = pid;
        lat.edgeScore[e] = score[pid]!;
        e++;
        if (depth === 1) hasSingle = true;
      }
      if (depth >= maxPieceLength || i + depth >= len) break;
      node = trie.childOf(node, seq[start + i + depth]!);
      depth++;
    }
    if (!hasSingle) {
      lat.edgeStart[e] = i;
      lat.edgeEnd[e] = i + 1;
      lat.edgePiece[e] = -1;
      lat.edgeScore[e] = unkScore;
      e++;
    }
  }
  lat.firstEdge[len] = e;
  lat.numEdges = e;
}

/** Forward–backward; adds freq × marginal of every edge to expected[piece]; returns log Z. */
function addMarginals(lat: Lattice, len: number, freq: number, expected: Float64Array): number {
  const { alpha, beta, acc, ref, edgeEnd, edgePiece, edgeScore, firstEdge } = lat;
  for (let j = 0; j <= len; j++) acc[j] = 0;
  alpha[0] = 0;
  for (let i = 0; i < len; i++) {
    if (i > 0) alpha[i] = acc[i]! > 0 ? ref[i]! + Math.log(acc[i]!) : -Infinity;
    const a = alpha[i]!;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) {
      const j = edgeEnd[e]!;
      const v = a + edgeScore[e]!;
      if (acc[j] === 0) {
        ref[j] = v;
        acc[j] = 1;
      } else {
        const d = v - ref[j]!;
        if (d > 600) {
          acc[j] = acc[j]! * Math.exp(-d) + 1;
          ref[j] = v;
        } else {
          acc[j]! += Math.exp(d);
        }
      }
    }
  }
  const logZ = ref[len]! + Math.log(acc[len]!);
  beta[len] = 0;
  for (let i = len - 1; i >= 0; i--) {
    const s = firstEdge[i]!;
    const end = firstEdge[i + 1]!;
    let r = edgeScore[s]! + beta[edgeEnd[s]!]!;
    let sum = 1;
    for (let e = s + 1; e < end; e++) {
      const v = edgeScore[e]! + beta[edgeEnd[e]!]!;
      const d = v - r;
      if (d > 600) {
        sum = sum * Math.exp(-d) + 1;
        r = v;
      } else {
        sum += Math.exp(d);
      }
    }
    beta[i] = r + Math.log(sum);
  }
  for (let i = 0; i < len; i++) {
    const a = alpha[i]! - logZ;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) {
      const pid = edgePiece[e]!;
      if (pid < 0) continue;
      expected[pid]! += freq * Math.exp(a + edgeScore[e]! + beta[edgeEnd[e]!]!);
    }
  }
  return logZ;
}

/** Viterbi; leaves the best path's edges (reversed) in `path` and returns their count. */
function viterbi(lat: Lattice, len: number, path: number[]): number {
  const { bestScore, bestEdge, edgeEnd, edgeScore, firstEdge } = lat;
  for (let j = 1; j <= len; j++) {
    bestScore[j] = -Infinity;
    bestEdge[j] = -1;
  }
  bestScore[0] = 0;
  for (let i = 0; i < len; i++) {
    const b = bestScore[i]!;
    if (b === -Infinity) continue;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) {
      const j = edgeEnd[e]!;
      const v = b + edgeScore[e]!;
      if (v > bestScore[j]!) {
        bestScore[j] = v;
        bestEdge[j] = e;
      }
    }
  }
  path.length = 0;
  let j = len;
  while (j > 0) {
    const e = bestEdge[j]!;
    if (e < 0) return 0;
    path.push(e);
    j = lat.edgeStart[e]!;
  }
  return path.length;
}

export function trainUnigram(
  text: Int32Array,
  words: WordCounts,
  alphabet: Alphabet,
  opts: UnigramOptions,
): UnigramResult {
  const alphabetSize = alphabet.chars.length + 2;
  const charOf = [0, 0x2585, ...alphabet.chars];
  // 1. Seeds.
  opts.onProgress?.('seed', 0);
  const subs = frequentSubstrings(text, alphabetSize, opts.maxPieceLength, opts.seedSentencepieceSize, opts.isValid);
  const nChars = alphabet.chars.length;
  const numPieces = nChars + subs.starts.length;
  // Piece sequences: characters first (most frequent first), then substrings.
  let total = nChars;
  for (let i = 0; i < subs.lengths.length; i++) total += subs.lengths[i]!;
  const pieceData = new Int32Array(total);
  const pieceStart = new Int32Array(numPieces + 1);
  let p = 0;
  const rawScore = new Float64Array(numPieces);
  for (let i = 0; i < nChars; i++) {
    pieceStart[i] = p;
    pieceData[p++] = i + 2;
    rawScore[i] = alphabet.counts[i]!;
  }
  for (let k = 0; k < subs.starts.length; k++) {
    const id = nChars + k;
    pieceStart[id] = p;
    pieceData.set(text.subarray(subs.starts[k]!, subs.starts[k]! + subs.lengths[k]!), p);
    p += subs.lengths[k]!;
    rawScore[id] = subs.scores[k]!;
  }
  pieceStart[numPieces] = p;
  const pieceLength = (id: number): number => pieceStart[id + 1]! - pieceStart[id]!;
  const pieceString = (id: number): string => {
    let s = '';
    for (let q = pieceStart[id]!; q < pieceStart[id + 1]!; q++) s += String.fromCodePoint(charOf[pieceData[q]!]!);
    return s;
  };

  // ToLogProb (SentencePiece sums in float).
  let sum = 0;
  for (let i = 0; i < numPieces; i++) sum = Math.fround(sum + rawScore[i]!);
  const logSum = Math.log(sum);
  const score = new Float64Array(numPieces);
  for (let i = 0; i < numPieces; i++) score[i] = Math.fround(Math.log(rawScore[i]!) - logSum);
  const active = new Uint8Array(numPieces).fill(1);

  // The trie holds only the active pieces: rebuilt whenever pieces were dropped, so that it stays
  // small (cache-resident) and lattice walks stop as early as the current vocabulary allows.
  const buildTrie = (): PieceTrie => {
    let count = 0;
    for (let i = 0; i < numPieces; i++) if (active[i]) count++;
    const trie = new PieceTrie(alphabetSize, count * 2);
    for (let i = 0; i < numPieces; i++) if (active[i]) trie.insert(pieceData, pieceStart[i]!, pieceLength(i), i);
    return trie;
  };
  const model: Model = { trie: buildTrie(), score, active, minScore: 0, maxPieceLength: opts.maxPieceLength };
  let trieSize = numPieces;
  const refreshMinScore = (): number => {
    let m = Infinity;
    let count = 0;
    for (let i = 0; i < numPieces; i++) {
      if (!active[i]) continue;
      count++;
      if (score[i]! < m) m = score[i]!;
    }
    model.minScore = m;
    if (count < trieSize * 0.9) {
      model.trie = buildTrie();
      trieSize = count;
    }
    return count;
  };
  let size = refreshMinScore();
  opts.onProgress?.('seeded', size);

  const lat = new Lattice();
  const nWords = words.freqs.length;
  const expected = new Float64Array(numPieces);
  let rounds = 0;
  const path: number[] = [];

  for (;;) {
    for (let iter = 0; iter < opts.numSubIterations; iter++) {
      // E-step.
      expected.fill(0);
      for (let w = 0; w < nWords; w++) {
        const s = words.offsets[w]!;
        const len = words.offsets[w + 1]! - s;
        buildLattice(lat, model, words.data, s, len);
        addMarginals(lat, len, words.freqs[w]!, expected);
      }
      // M-step (Bayesian EM: digamma instead of log).
      let total = 0;
      for (let i = 0; i < numPieces; i++) {
        if (!active[i]) continue;
        if (expected[i]! < EXPECTED_FREQUENCY_THRESHOLD) active[i] = 0;
        else total += expected[i]!;
      }
      const logTotal = digamma(total);
      for (let i = 0; i < numPieces; i++) if (active[i]) score[i] = Math.fround(digamma(expected[i]!) - logTotal);
      size = refreshMinScore();
      opts.onProgress?.('em', size);
    }
    rounds++;
    if (size <= opts.desiredSize) break;

    // Prune.
    // (a) how each piece would be re-segmented without it (its second-best segmentation).
    const alwaysKeep = new Uint8Array(numPieces);
    const altStart = new Int32Array(numPieces + 1);
    const altData: number[] = [];
    for (let i = 0; i < numPieces; i++) {
      altStart[i] = altData.length;
      if (!active[i]) continue;
      const len = pieceLength(i);
      if (len === 1) {
        alwaysKeep[i] = 1; // a single node: no second-best path
        continue;
      }
      buildLattice(lat, model, pieceData, pieceStart[i]!, len);
      const n = viterbi(lat, len, path);
      if (n >= 2) continue; // its own best segmentation splits it: removable
      alwaysKeep[i] = 1;
      buildLattice(lat, model, pieceData, pieceStart[i]!, len, i);
      viterbi(lat, len, path);
      for (let k = path.length - 1; k >= 0; k--) altData.push(lat.edgePiece[path[k]!]!);
    }
    altStart[numPieces] = altData.length;
    // (b) Viterbi frequencies over the corpus.
    const freq = new Float64Array(numPieces);
    let vsum = 0;
    for (let w = 0; w < nWords; w++) {
      const s = words.offsets[w]!;
      const len = words.offsets[w + 1]! - s;
      const f = words.freqs[w]!;
      buildLattice(lat, model, words.data, s, len);
      viterbi(lat, len, path);
      vsum += f;
      for (const e of path) {
        const pid = lat.edgePiece[e]!;
        if (pid >= 0) freq[pid]! += f;
      }
    }
    let fsum = 0;
    for (let i = 0; i < numPieces; i++) fsum += freq[i]!;
    const logFsum = Math.log(fsum);
    // (c) loss of removing each piece.
    const kept: number[] = [];
    const candidates: number[] = [];
    const loss = new Float64Array(numPieces);
    for (let i = 0; i < numPieces; i++) {
      if (!active[i]) continue;
      if (freq[i] === 0 || !alwaysKeep[i]) continue;
      const a0 = altStart[i]!;
      const a1 = altStart[i + 1]!;
      if (a0 === a1) {
        kept.push(i);
        continue;
      }
      const F = freq[i]! / vsum;
      const logprobSp = Math.log(freq[i]!) - logFsum;
      const logsumAlt = Math.log(fsum + freq[i]! * (a1 - a0 - 1));
      let logprobAlt = 0;
      for (let k = a0; k < a1; k++) {
        const alt = altData[k]!;
        logprobAlt += Math.log((alt >= 0 ? freq[alt]! : 0) + freq[i]!) - logsumAlt;
      }
      loss[i] = F * (logprobSp - logprobAlt);
      candidates.push(i);
    }
    const prunedSize = Math.max(opts.desiredSize, Math.trunc(opts.shrinkingFactor * size));
    candidates.sort((x, y) => loss[y]! - loss[x]! || x - y);
    for (const i of candidates) {
      if (kept.length >= prunedSize) break;
      kept.push(i);
    }
    active.fill(0);
    for (const i of kept) active[i] = 1;
    size = refreshMinScore();
    opts.onProgress?.('prune', size);
  }

  // 4. Finalize: kept characters first (those EM dropped get min score + a small penalty), then the
  // best pieces, all sorted by score (ties: piece bytes).
  const final = new Map<string, number>();
  let penalty = 0;
  for (let i = 0; i < nChars; i++) {
    const s = String.fromCodePoint(alphabet.chars[i]!);
    if (active[i]) {
      final.set(s, score[i]!);
    } else {
      final.set(s, Math.fround(model.minScore + penalty));
      penalty += MIN_SCORE_PENALTY_DELTA;
    }
  }
  const rest: number[] = [];
  for (let i = nChars; i < numPieces; i++) if (active[i]) rest.push(i);
  const restStr = new Map<number, string>();
  for (const i of rest) restStr.set(i, pieceString(i));
  rest.sort((x, y) => score[y]! - score[x]! || compareCodePoints(restStr.get(x)!, restStr.get(y)!));
  for (const i of rest) {
    if (final.size >= opts.vocabSize) break;
    const s = restStr.get(i)!;
    if (!final.has(s)) final.set(s, score[i]!);
  }
  const pieces = [...final.entries()].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return { pieces, seedCount: numPieces, emRounds: rounds };
}
