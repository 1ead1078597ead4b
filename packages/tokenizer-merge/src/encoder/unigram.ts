/**
 * SentencePiece UNIGRAM segmentation as Python sentencepiece 0.2.2 does it (`unigram_model.cc`,
 * `EncodeOptimized`): Viterbi over the lattice of pieces that match the normalized UTF-8 bytes, built
 * on the fly, keeping one best path per end position. The rule that decides exact ties is float32
 * arithmetic: a candidate is `score + best_path_score_till_here`, both float, summed and compared in
 * float32, and replaces the stored path only when strictly greater (so on a float32 tie the path whose
 * last piece starts earlier stays). When the score reaching a start position leaves ±100000, the
 * scores from there to the furthest position any piece has reached are shifted by it (float32
 * subtraction) and the sum restarts at 0, so long lines keep their precision. A character no piece
 * covers gets the unknown piece with score `min_score - 10`; a user-defined piece scores
 * `0.1 * (bytes - 1)` (as float).
 *
 * How this differs from sentencepiece 0.1.x (0.1.91–0.1.99; test-fixtures/README.md says which
 * version made each golden): there the candidate was a double (`length * max_score - 0.1` for a
 * user-defined piece made the conditional a double) compared against the float store, with no
 * rescaling and user-defined pieces scored `bytes * max_score - 0.1`. Double candidates break some
 * exact ties the other way ("！！！！" = "！！！"+"！" there, "！"+"！！！" here). Our code is the same
 * loop over a byte trie; nothing else differs.
 */
import type { Emitter } from './emitter.js';
import { IntPairMap } from './int-pair-map.js';
import { NORMAL, UNUSED, USER_DEFINED, type Vocabulary } from './model.js';
import { oneCharLen } from './normalizer.js';

const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
/** `kScoreResetThreshold`: beyond ±this the path scores are shifted back to 0. */
const SCORE_RESET = 100_000;

export class UnigramModel {
  /** Byte trie: (node, byte) → child node; node 0 is the root. */
  private readonly edges: IntPairMap;
  private nodePiece: Int32Array;
  private readonly unkScore: number;
  private bestScore = new Float64Array(256);
  private startsAt = new Int32Array(256);
  private bestId = new Int32Array(256);

  constructor(private readonly vocab: Vocabulary) {
    const encoder = new TextEncoder();
    let minScore = FLT_MAX;
    let totalBytes = 0;
    const keys: Array<[Uint8Array, number]> = [];
    for (const [piece, id] of vocab.pieces) {
      const bytes = encoder.encode(piece);
      keys.push([bytes, id]);
      totalBytes += bytes.length;
    }
    for (let i = 0; i < vocab.size; i++) {
      if (vocab.types[i] === NORMAL) minScore = Math.min(minScore, vocab.scores[i]);
    }
    this.unkScore = Math.fround(minScore - UNK_PENALTY);
    this.edges = new IntPairMap(totalBytes);
    const nodePiece: number[] = [-1];
    for (const [bytes, id] of keys) {
      let node = 0;
      for (const b of bytes) {
        let next = this.edges.get(node, b);
        if (next < 0) {
          next = nodePiece.length;
          nodePiece.push(-1);
          this.edges.setIfAbsent(node, b, next);
        }
        node = next;
      }
      nodePiece[node] = id;
    }
    this.nodePiece = Int32Array.from(nodePiece);
  }

  /** Segment normalized UTF-8 `bytes[0, size)` and emit ids. */
  encode(bytes: Uint8Array, size: number, emitter: Emitter): void {
    if (size === 0) return;
    if (this.bestScore.length < size + 1) {
      this.bestScore = new Float64Array(size + 1);
      this.startsAt = new Int32Array(size + 1);
      this.bestId = new Int32Array(size + 1);
    }
    const { bestScore, startsAt, bestId, edges, nodePiece } = this;
    const { types, scores } = this.vocab;
    const unkId = this.vocab.unkId;
    startsAt.fill(-1, 0, size + 1);
    bestScore[0] = 0;
    let frontier = 0; // the furthest end any piece has reached
    for (let start = 0; start < size; ) {
      let tillHere = bestScore[start];
      if (tillHere < -SCORE_RESET || tillHere > SCORE_RESET) {
        for (let i = start; i <= frontier; i++) if (i === start || startsAt[i] !== -1) bestScore[i] = Math.fround(bestScore[i] - tillHere);
        tillHere = 0;
      }
      const mblen = Math.min(oneCharLen(bytes[start]), size - start);
      let hasSingleNode = false;
      let node = 0;
      for (let pos = start; pos < size; ) {
        node = edges.get(node, bytes[pos]);
        if (node < 0) break;
        pos++;
        const id = nodePiece[node];
        if (id < 0) continue;
        const type = types[id];
        if (type === UNUSED) continue;
        if (pos > frontier) frontier = pos;
        const length = pos - start;
        const score = type === USER_DEFINED ? Math.fround(0.1 * (length - 1)) : scores[id];
        const candidate = Math.fround(score + tillHere); // float + float, as float
        if (startsAt[pos] === -1 || candidate > bestScore[pos]) {
          bestScore[pos] = candidate;
          startsAt[pos] = start;
          bestId[pos] = id;
        }
        if (!hasSingleNode && length === mblen) hasSingleNode = true;
      }
      if (!hasSingleNode) {
        const target = start + mblen;
        if (target > frontier) frontier = target;
        const candidate = Math.fround(this.unkScore + tillHere);
        if (startsAt[target] === -1 || candidate > bestScore[target]) {
          bestScore[target] = candidate;
          startsAt[target] = start;
          bestId[target] = unkId;
        }
      }
      start += mblen;
    }
    // Backtrack, then emit left to right.
    const path: number[] = [];
    for (let end = size; end > 0; end = startsAt[end]) path.push(end);
    for (let k = path.length - 1; k >= 0; k--) {
      const end = path[k];
      const id = bestId[end];
      if (id === unkId) emitter.emitUnknownBytes(bytes, startsAt[end], end);
      else emitter.emit(id);
    }
  }
}
