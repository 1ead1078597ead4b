/**
 * SentencePiece UNIGRAM segmentation (`unigram_model.cc`, `EncodeOptimized`): Viterbi over the
 * lattice of pieces that match the normalized UTF-8 bytes, built on the fly. Path scores are stored
 * as float32 and candidates summed in double exactly as the C++ types do, so exact ties (common with
 * runs of repeated characters) resolve the same way. A character no piece covers gets
 * the unknown piece with score `min_score - 10`; user-defined pieces score `length * max_score - 0.1`.
 */
import type { Emitter } from './emitter.js';
import { IntPairMap } from './int-pair-map.js';
import { NORMAL, UNUSED, USER_DEFINED, type Vocabulary } from './model.js';
import { oneCharLen } from './normalizer.js';

const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;

export class UnigramModel {
  /** Byte trie: (node, byte) → child node; node 0 is the root. */
  private readonly edges: IntPairMap;
  private nodePiece: Int32Array;
  private readonly unkScore: number;
  private readonly maxScore: number;
  private bestScore = new Float64Array(256);
  private startsAt = new Int32Array(256);
  private bestId = new Int32Array(256);

  constructor(private readonly vocab: Vocabulary) {
    const encoder = new TextEncoder();
    let minScore = FLT_MAX;
    let maxScore = FLT_MIN;
    let totalBytes = 0;
    const keys: Array<[Uint8Array, number]> = [];
    for (const [piece, id] of vocab.pieces) {
      const bytes = encoder.encode(piece);
      keys.push([bytes, id]);
      totalBytes += bytes.length;
    }
    for (let i = 0; i < vocab.size; i++) {
      if (vocab.types[i] === NORMAL) {
        minScore = Math.min(minScore, vocab.scores[i]);
        maxScore = Math.max(maxScore, vocab.scores[i]);
      }
    }
    this.unkScore = Math.fround(minScore - UNK_PENALTY);
    this.maxScore = maxScore;
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
    for (let start = 0; start < size; ) {
      const tillHere = bestScore[start];
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
        const length = pos - start;
        // In C++ `score` is `cond ? (length * max_score_ - 0.1) : GetScore(id)`, a double for
        // both branches, so the candidate is a double sum compared against the stored float.
        const score = type === USER_DEFINED ? Math.fround(length * this.maxScore) - 0.1 : scores[id];
        const candidate = score + tillHere;
        if (startsAt[pos] === -1 || candidate > bestScore[pos]) {
          bestScore[pos] = Math.fround(candidate);
          startsAt[pos] = start;
          bestId[pos] = id;
        }
        if (!hasSingleNode && length === mblen) hasSingleNode = true;
      }
      if (!hasSingleNode) {
        const target = start + mblen;
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
