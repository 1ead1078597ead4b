/**
 * SentencePiece's unigram trainer (unigram_model_trainer.cc):
 *  1. seed pieces: all characters + the most frequent substrings (./seeds.ts), scored by log frequency;
 *  2. EM: E-step = expected piece counts by forward–backward over every word's lattice, M-step =
 *     Bayesian (digamma) re-estimation dropping pieces expected less than 0.5 times; two sub-iterations;
 *  3. pruning: drop the pieces whose removal loses the least likelihood (each piece's loss estimated
 *     from its second-best segmentation) to max(vocab × 1.1, 75 % of the current size); repeat 2–3;
 *  4. final: kept characters + the best-scoring pieces up to the vocabulary size.
 *
 * Pieces keep their seed index for the whole run (`PieceSet`): pruning only switches pieces off, and
 * the trie over the active ones is rebuilt only when it shrank by a tenth.
 *
 * The steps, in order: `seedPieces`, `PieceSet` (log-probability scores, trie), `emIteration` ×
 * sub-iterations, then while too large `secondBestSegmentations` + `piecesToKeep`, and `finalPieces`.
 */
import type { Alphabet, WordCounts } from './corpus.js';
import { compareCodePoints } from './bpe.js';
import { frequentSubstrings } from './seeds.js';
import { type LatticeBuffers, type LatticeModel, type TrieArrays, ugBuildLattice, ugNewLattice, ugTrieSlot, ugViterbi } from './lattice.js';
import { LatticePool, sharedFloat64, sharedInt32, sharedUint8 } from './em-pool.js';

export interface UnigramOptions {
  vocabSize: number; // pieces to produce (vocabulary size minus meta pieces)
  desiredSize: number; // stop EM once the model is at most this large (vocab_size × 1.1)
  seedSentencepieceSize: number;
  shrinkingFactor: number;
  numSubIterations: number;
  maxPieceLength: number;
  /** Validity of the substring text[start..start+len) as a piece. */
  isValid: (start: number, len: number) => boolean;
  /** Threads for the lattice passes (E-step, Viterbi). */
  threads: number;
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

/** Builds the shared-memory trie (./lattice.ts TrieArrays) over the active pieces. */
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
    return ugTrieSlot(node, c, this.mask);
  }

  /**
   * The lookup form, in shared memory: one interleaved slot per edge, [parent, char, child, piece
   * ending at child], so that a step of a lattice walk touches a single cache line.
   */
  arrays(): TrieArrays {
    let cap = 1 << 10;
    while (cap < this.used * 1.5) cap *= 2;
    const mask = cap - 1;
    const table = sharedInt32(cap * 4).fill(-1);
    for (let i = 0; i < this.keyNode.length; i++) {
      const node = this.keyNode[i]!;
      if (node === -1) continue;
      const c = this.keyChar[i]!;
      let slot = ugTrieSlot(node, c, mask);
      while (table[slot * 4] !== -1) slot = (slot + 1) & mask;
      table[slot * 4] = node;
      table[slot * 4 + 1] = c;
      table[slot * 4 + 2] = this.child[i]!;
      table[slot * 4 + 3] = this.nodePiece[this.child[i]!]!;
    }
    const rootChild = sharedInt32(this.rootChild.length);
    const rootPiece = sharedInt32(this.rootChild.length);
    for (let c = 0; c < this.rootChild.length; c++) {
      const n = this.rootChild[c]!;
      rootChild[c] = n;
      rootPiece[c] = n >= 0 ? this.nodePiece[n]! : -1;
    }
    return { rootChild, rootPiece, table, mask };
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

/**
 * A full garbage collection, where the host process allows one (`node --expose-gc`, or the
 * cllama-tokenizer CLI, which turns it on for its own process). Training allocates and drops several
 * corpus-sized typed arrays in a row; collecting between the phases keeps the peak resident memory
 * near the live data instead of live data + the previous phase's garbage. A library call never
 * changes the host's V8 flags: without `gc` this is a no-op.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Seed pieces as id sequences: the characters (most frequent first), then the frequent substrings. */
function seedPieces(
  text: Int32Array,
  alphabet: Alphabet,
  opts: UnigramOptions,
): { pieceData: Int32Array; pieceStart: Int32Array; rawScore: Float64Array; numPieces: number } {
  const alphabetSize = alphabet.chars.length + 2;
  const subs = frequentSubstrings(text, alphabetSize, opts.maxPieceLength, opts.seedSentencepieceSize, opts.isValid);
  const nChars = alphabet.chars.length;
  const numPieces = nChars + subs.starts.length;
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
  return { pieceData, pieceStart, rawScore, numPieces };
}

/** ToLogProb: each seed's log frequency share (SentencePiece sums the frequencies in float). */
function logProbScores(rawScore: Float64Array): Float64Array {
  let sum = 0;
  for (let i = 0; i < rawScore.length; i++) sum = Math.fround(sum + rawScore[i]!);
  const logSum = Math.log(sum);
  const score = sharedFloat64(rawScore.length);
  for (let i = 0; i < rawScore.length; i++) score[i] = Math.fround(Math.log(rawScore[i]!) - logSum);
  return score;
}

/**
 * The seed pieces for the whole run (ids never change; pruning only switches pieces off) and the
 * lattice model over the active ones. The trie holds only the active pieces: rebuilt whenever enough
 * were dropped, so that it stays small (cache-resident) and lattice walks stop as early as the current
 * vocabulary allows.
 */
class PieceSet {
  readonly num: number;
  readonly data: Int32Array;
  readonly start: Int32Array;
  readonly score: Float64Array;
  readonly active: Uint8Array;
  readonly model: LatticeModel;
  private trieSize: number;

  constructor(
    seeds: { pieceData: Int32Array; pieceStart: Int32Array; rawScore: Float64Array; numPieces: number },
    private readonly alphabetSize: number,
    maxPieceLength: number,
  ) {
    this.num = seeds.numPieces;
    this.data = seeds.pieceData;
    this.start = seeds.pieceStart;
    this.score = logProbScores(seeds.rawScore);
    this.active = sharedUint8(this.num).fill(1);
    this.model = { trie: this.buildTrie(), score: this.score, active: this.active, minScore: 0, maxPieceLength, q: sharedFloat64(this.num), unkQ: 0 };
    this.trieSize = this.num;
  }

  length(id: number): number {
    return this.start[id + 1]! - this.start[id]!;
  }

  string(id: number, charOf: readonly number[]): string {
    let s = '';
    for (let q = this.start[id]!; q < this.start[id + 1]!; q++) s += String.fromCodePoint(charOf[this.data[q]!]!);
    return s;
  }

  private buildTrie(): TrieArrays {
    let count = 0;
    for (let i = 0; i < this.num; i++) if (this.active[i]) count++;
    const trie = new PieceTrie(this.alphabetSize, count * 2);
    for (let i = 0; i < this.num; i++) if (this.active[i]) trie.insert(this.data, this.start[i]!, this.length(i), i);
    return trie.arrays();
  }

  /** After pieces were switched off: the model's min score, the trie if it shrank by 10 %; returns the active count. */
  refresh(): number {
    let m = Infinity;
    let count = 0;
    for (let i = 0; i < this.num; i++) {
      if (!this.active[i]) continue;
      count++;
      if (this.score[i]! < m) m = this.score[i]!;
    }
    this.model.minScore = m;
    if (count < this.trieSize * 0.9) {
      this.model.trie = this.buildTrie();
      this.trieSize = count;
      collectGarbage(); // the old trie and the last round's scratch arrays
    }
    return count;
  }

  /** The E-step's linear-space weights (LatticeModel.q) for mean log-probability `perChar` per character. */
  scaleWeights(perChar: number): void {
    for (let i = 0; i < this.num; i++) if (this.active[i]) this.model.q[i] = Math.exp(this.score[i]! - perChar * this.length(i));
    this.model.unkQ = Math.exp(this.model.minScore - UNK_PENALTY - perChar);
  }
}

/** The words in shared memory, for the worker threads (copied unless they already are). */
function sharedWords(words: WordCounts): WordCounts {
  const isShared = (a: ArrayBufferView): boolean => a.buffer instanceof SharedArrayBuffer;
  if (isShared(words.data) && isShared(words.offsets) && isShared(words.freqs)) return words;
  const shared = { data: sharedInt32(words.data.length), offsets: sharedInt32(words.offsets.length), freqs: sharedFloat64(words.freqs.length) };
  shared.data.set(words.data);
  shared.offsets.set(words.offsets);
  shared.freqs.set(words.freqs);
  return shared;
}

/**
 * One EM iteration: E-step (expected piece counts by forward–backward) at the current `perChar`, then
 * the Bayesian M-step (digamma instead of log), dropping pieces expected less than 0.5 times. Returns
 * the new mean log-probability per character.
 */
async function emIteration(pool: LatticePool, pieces: PieceSet, expected: Float64Array, perChar: number, totalCharsWeighted: number): Promise<number> {
  pieces.scaleWeights(perChar);
  const loglik = await pool.run(0, pieces.model, expected, -perChar);
  const { active, score } = pieces;
  let total = 0;
  for (let i = 0; i < pieces.num; i++) {
    if (!active[i]) continue;
    if (expected[i]! < EXPECTED_FREQUENCY_THRESHOLD) active[i] = 0;
    else total += expected[i]!;
  }
  const logTotal = digamma(total);
  for (let i = 0; i < pieces.num; i++) if (active[i]) score[i] = Math.fround(digamma(expected[i]!) - logTotal);
  // weighted log-likelihood / weighted characters ≈ per-character log-probability
  return loglik / totalCharsWeighted;
}

/** How each active piece would be segmented without it (its second-best segmentation). */
interface Alternatives {
  /** 1 = a candidate for pruning (its best segmentation is itself); pieces of one character always are */
  alwaysKeep: Uint8Array;
  /** piece i's alternative segmentation is data[start[i], start[i + 1]) (empty: none) */
  start: Int32Array;
  data: number[];
}

function secondBestSegmentations(pieces: PieceSet, lat: LatticeBuffers, path: number[]): Alternatives {
  const alwaysKeep = new Uint8Array(pieces.num);
  const start = new Int32Array(pieces.num + 1);
  const data: number[] = [];
  for (let i = 0; i < pieces.num; i++) {
    start[i] = data.length;
    if (!pieces.active[i]) continue;
    const len = pieces.length(i);
    if (len === 1) {
      alwaysKeep[i] = 1; // a single node: no second-best path
      continue;
    }
    ugBuildLattice(lat, pieces.model, pieces.data, pieces.start[i]!, len, -1);
    const n = ugViterbi(lat, len, path);
    if (n >= 2) continue; // its own best segmentation splits it: removable
    alwaysKeep[i] = 1;
    ugBuildLattice(lat, pieces.model, pieces.data, pieces.start[i]!, len, i);
    ugViterbi(lat, len, path);
    for (let k = path.length - 1; k >= 0; k--) data.push(lat.edgePiece[path[k]!]!);
  }
  start[pieces.num] = data.length;
  return { alwaysKeep, start, data };
}

/**
 * The pieces to keep after pruning: those without an alternative, then the candidates whose removal
 * would lose the most likelihood (Viterbi frequencies `freq`, their sum over the corpus `vsum`), up to
 * `prunedSize`.
 */
function piecesToKeep(pieces: PieceSet, alt: Alternatives, freq: Float64Array, vsum: number, prunedSize: number): number[] {
  let fsum = 0;
  for (let i = 0; i < pieces.num; i++) fsum += freq[i]!;
  const logFsum = Math.log(fsum);
  const kept: number[] = [];
  const candidates: number[] = [];
  const loss = new Float64Array(pieces.num);
  for (let i = 0; i < pieces.num; i++) {
    if (!pieces.active[i]) continue;
    if (freq[i] === 0 || !alt.alwaysKeep[i]) continue;
    const a0 = alt.start[i]!;
    const a1 = alt.start[i + 1]!;
    if (a0 === a1) {
      kept.push(i);
      continue;
    }
    const F = freq[i]! / vsum;
    const logprobSp = Math.log(freq[i]!) - logFsum;
    const logsumAlt = Math.log(fsum + freq[i]! * (a1 - a0 - 1));
    let logprobAlt = 0;
    for (let k = a0; k < a1; k++) {
      const a = alt.data[k]!;
      logprobAlt += Math.log((a >= 0 ? freq[a]! : 0) + freq[i]!) - logsumAlt;
    }
    loss[i] = F * (logprobSp - logprobAlt);
    candidates.push(i);
  }
  candidates.sort((x, y) => loss[y]! - loss[x]! || x - y);
  for (const i of candidates) {
    if (kept.length >= prunedSize) break;
    kept.push(i);
  }
  return kept;
}

/**
 * The vocabulary: kept characters first (those EM dropped get min score + a small penalty), then the
 * best pieces up to `vocabSize`, all sorted by score (ties: piece bytes).
 */
function finalPieces(pieces: PieceSet, alphabet: Alphabet, vocabSize: number, charOf: readonly number[]): Array<[string, number]> {
  const { active, score } = pieces;
  const nChars = alphabet.chars.length;
  const final = new Map<string, number>();
  let penalty = 0;
  for (let i = 0; i < nChars; i++) {
    const s = String.fromCodePoint(alphabet.chars[i]!);
    if (active[i]) {
      final.set(s, score[i]!);
    } else {
      final.set(s, Math.fround(pieces.model.minScore + penalty));
      penalty += MIN_SCORE_PENALTY_DELTA;
    }
  }
  const rest: number[] = [];
  for (let i = nChars; i < pieces.num; i++) if (active[i]) rest.push(i);
  const restStr = new Map<number, string>();
  for (const i of rest) restStr.set(i, pieces.string(i, charOf));
  rest.sort((x, y) => score[y]! - score[x]! || compareCodePoints(restStr.get(x)!, restStr.get(y)!));
  for (const i of rest) {
    if (final.size >= vocabSize) break;
    const s = restStr.get(i)!;
    if (!final.has(s)) final.set(s, score[i]!);
  }
  return [...final.entries()].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
}

export async function trainUnigram(
  /** Sentences as one id array (see concatSentences); released (set to undefined) after seeding. */
  corpus: { text: Int32Array | undefined },
  words: WordCounts,
  alphabet: Alphabet,
  opts: UnigramOptions,
): Promise<UnigramResult> {
  // 1. Seeds.
  opts.onProgress?.('seed', 0);
  collectGarbage(); // corpus-preparation garbage would otherwise stack up under the suffix arrays
  const seeds = seedPieces(corpus.text!, alphabet, opts);
  corpus.text = undefined; // the seeds are copied out; the joined corpus is no longer needed
  collectGarbage();
  const pieces = new PieceSet(seeds, alphabet.chars.length + 2, opts.maxPieceLength);
  let size = pieces.refresh();
  opts.onProgress?.('seeded', size);

  // Mean log-probability per character (see LatticeModel.q); refined after every E-step.
  let totalCharsWeighted = 0;
  for (let w = 0; w < words.freqs.length; w++) totalCharsWeighted += words.freqs[w]! * (words.offsets[w + 1]! - words.offsets[w]!);
  let perChar = Math.log(1 / Math.max(2, alphabet.chars.length));
  const pool = new LatticePool(sharedWords(words), opts.threads, pieces.num);
  const expected = new Float64Array(pieces.num);
  const lat = ugNewLattice();
  const path: number[] = [];
  let rounds = 0;
  try {
    for (;;) {
      // 2. EM.
      for (let iter = 0; iter < opts.numSubIterations; iter++) {
        perChar = await emIteration(pool, pieces, expected, perChar, totalCharsWeighted);
        size = pieces.refresh();
        opts.onProgress?.('em', size);
      }
      rounds++;
      if (size <= opts.desiredSize) break;
      // 3. Prune.
      const alt = secondBestSegmentations(pieces, lat, path);
      const freq = new Float64Array(pieces.num);
      const vsum = await pool.run(1, pieces.model, freq);
      const kept = piecesToKeep(pieces, alt, freq, vsum, Math.max(opts.desiredSize, Math.trunc(opts.shrinkingFactor * size)));
      pieces.active.fill(0);
      for (const i of kept) pieces.active[i] = 1;
      size = pieces.refresh();
      opts.onProgress?.('prune', size);
    }
  } finally {
    await pool.close();
  }
  // 4. Finalize.
  return { pieces: finalPieces(pieces, alphabet, opts.vocabSize, [0, 0x2585, ...alphabet.chars]), seedCount: pieces.num, emRounds: rounds };
}
