/**
 * The unigram trainer's inner loops: lattice construction over a piece trie, forward–backward
 * expected counts (E-step) and Viterbi. Every function here is self-contained (plain typed arrays
 * in, numbers out; no imports, no module-level constants) because ./em-pool.ts ships their source
 * text to worker threads, which run them on SharedArrayBuffer views of the same data.
 */

/**
 * A trie over dense character ids: root children in arrays, deeper edges in an open-addressing
 * table of 4-int slots [parent node, char, child node, piece ending at child (-1: none)].
 */
export interface TrieArrays {
  rootChild: Int32Array;
  rootPiece: Int32Array;
  table: Int32Array; // parent -1 = empty slot
  mask: number;
}

export interface LatticeModel {
  trie: TrieArrays;
  score: Float64Array; // by piece id
  active: Uint8Array; // by piece id
  minScore: number;
  maxPieceLength: number;
  /**
   * Linear-space edge weights for the E-step: q[piece] = exp(score + c × length), and unkQ for the
   * unknown edge. Every segmentation of a word of n characters has its probability multiplied by the
   * same exp(c × n), so posteriors are unchanged, while c ≈ the mean log-probability per character
   * keeps products of hundreds of factors inside double range without taking logs.
   */
  q: Float64Array;
  unkQ: number;
}

/** Reusable buffers for one word's lattice; edges are grouped by start position. */
export interface LatticeBuffers {
  edgeStart: Int32Array;
  edgeEnd: Int32Array;
  edgePiece: Int32Array;
  edgeScore: Float64Array;
  edgeQ: Float64Array;
  firstEdge: Int32Array;
  alpha: Float64Array;
  beta: Float64Array;
  acc: Float64Array;
  ref: Float64Array;
  bestScore: Float64Array;
  bestEdge: Int32Array;
}

export function ugNewLattice(): LatticeBuffers {
  return {
    edgeStart: new Int32Array(1024),
    edgeEnd: new Int32Array(1024),
    edgePiece: new Int32Array(1024),
    edgeScore: new Float64Array(1024),
    edgeQ: new Float64Array(1024),
    firstEdge: new Int32Array(256),
    alpha: new Float64Array(256),
    beta: new Float64Array(256),
    acc: new Float64Array(256),
    ref: new Float64Array(256),
    bestScore: new Float64Array(256),
    bestEdge: new Int32Array(256),
  };
}

export function ugReserve(lat: LatticeBuffers, len: number, maxPieceLength: number): void {
  if (len + 2 > lat.alpha.length) {
    const m = Math.max(len + 2, lat.alpha.length * 2);
    lat.firstEdge = new Int32Array(m);
    lat.alpha = new Float64Array(m);
    lat.beta = new Float64Array(m);
    lat.acc = new Float64Array(m);
    lat.ref = new Float64Array(m);
    lat.bestScore = new Float64Array(m);
    lat.bestEdge = new Int32Array(m);
  }
  const e = (len + 1) * (maxPieceLength + 1);
  if (e > lat.edgeStart.length) {
    const m = Math.max(e, lat.edgeStart.length * 2);
    lat.edgeStart = new Int32Array(m);
    lat.edgeEnd = new Int32Array(m);
    lat.edgePiece = new Int32Array(m);
    lat.edgeScore = new Float64Array(m);
    lat.edgeQ = new Float64Array(m);
  }
}

export function ugTrieSlot(node: number, c: number, mask: number): number {
  return (Math.imul(node, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b)) & mask;
}

/**
 * Builds the lattice of seq[start..start+len) with the active pieces. A position with no
 * single-character piece gets an unknown edge (piece -1) scored minScore - 10, as SentencePiece's
 * unigram model does (kUnkPenalty). `skipWhole` leaves out that piece's edge over the whole sequence.
 */
export function ugBuildLattice(lat: LatticeBuffers, model: LatticeModel, seq: Int32Array, start: number, len: number, skipWhole: number): number {
  ugReserve(lat, len, model.maxPieceLength);
  const trie = model.trie;
  const active = model.active;
  const score = model.score;
  const maxPieceLength = model.maxPieceLength;
  const unkScore = model.minScore - 10;
  const rootChild = trie.rootChild;
  const rootPiece = trie.rootPiece;
  const table = trie.table;
  const mask = trie.mask;
  const edgeStart = lat.edgeStart;
  const edgeEnd = lat.edgeEnd;
  const edgePiece = lat.edgePiece;
  const edgeScore = lat.edgeScore;
  const edgeQ = lat.edgeQ;
  const q = model.q;
  const firstEdge = lat.firstEdge;
  let e = 0;
  for (let i = 0; i < len; i++) {
    firstEdge[i] = e;
    const c0 = seq[start + i]!;
    let node = rootChild[c0]!;
    let pid = rootPiece[c0]!;
    let depth = 1;
    let hasSingle = false;
    while (node >= 0) {
      if (pid >= 0 && active[pid] && !(pid === skipWhole && depth === len)) {
        edgeStart[e] = i;
        edgeEnd[e] = i + depth;
        edgePiece[e] = pid;
        edgeScore[e] = score[pid]!;
        edgeQ[e] = q[pid]!;
        e++;
        if (depth === 1) hasSingle = true;
      }
      if (depth >= maxPieceLength || i + depth >= len) break;
      const c = seq[start + i + depth]!;
      let slot = (Math.imul(node, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b)) & mask;
      const parent = node;
      node = -1;
      for (;;) {
        const b = slot << 2;
        const k = table[b]!;
        if (k === -1) break;
        if (k === parent && table[b + 1] === c) {
          node = table[b + 2]!;
          pid = table[b + 3]!;
          break;
        }
        slot = (slot + 1) & mask;
      }
      depth++;
    }
    if (!hasSingle) {
      edgeStart[e] = i;
      edgeEnd[e] = i + 1;
      edgePiece[e] = -1;
      edgeScore[e] = unkScore;
      edgeQ[e] = model.unkQ;
      e++;
    }
  }
  firstEdge[len] = e;
  return e;
}

/**
 * Forward–backward in log space; adds freq × posterior of every piece edge to expected[piece] and
 * returns log Z. Sums are kept as (reference, linear accumulator) pairs so that each edge costs one
 * exp rather than a full log-sum-exp.
 */
export function ugAddMarginals(lat: LatticeBuffers, len: number, freq: number, expected: Float64Array): number {
  const alpha = lat.alpha;
  const beta = lat.beta;
  const acc = lat.acc;
  const ref = lat.ref;
  const edgeEnd = lat.edgeEnd;
  const edgePiece = lat.edgePiece;
  const edgeScore = lat.edgeScore;
  const firstEdge = lat.firstEdge;
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
          acc[j] = acc[j]! + Math.exp(d);
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
      expected[pid] = expected[pid]! + freq * Math.exp(a + edgeScore[e]! + beta[edgeEnd[e]!]!);
    }
  }
  return logZ;
}

/**
 * ugAddMarginals with plain products of the scaled weights edgeQ (no exp/log per edge). Returns
 * log Z (= log Z' - c × len), or NaN when some partial sum left the safe range, in which case the
 * caller falls back to the log-space ugAddMarginals; `expected` is only touched on success.
 */
export function ugAddMarginalsLinear(lat: LatticeBuffers, len: number, freq: number, expected: Float64Array, c: number): number {
  const alpha = lat.alpha;
  const beta = lat.beta;
  const edgeEnd = lat.edgeEnd;
  const edgePiece = lat.edgePiece;
  const edgeQ = lat.edgeQ;
  const firstEdge = lat.firstEdge;
  for (let j = 1; j <= len; j++) alpha[j] = 0;
  alpha[0] = 1;
  for (let i = 0; i < len; i++) {
    const a = alpha[i]!;
    if (!(a > 1e-250 && a < 1e250)) return NaN;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) {
      const j = edgeEnd[e]!;
      alpha[j] = alpha[j]! + a * edgeQ[e]!;
    }
  }
  const Z = alpha[len]!;
  if (!(Z > 1e-250 && Z < 1e250)) return NaN;
  beta[len] = 1;
  for (let i = len - 1; i >= 0; i--) {
    let sum = 0;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) sum += edgeQ[e]! * beta[edgeEnd[e]!]!;
    if (!(sum > 1e-250 && sum < 1e250)) return NaN;
    beta[i] = sum;
  }
  const scale = freq / Z;
  for (let i = 0; i < len; i++) {
    const a = alpha[i]! * scale;
    for (let e = firstEdge[i]!, end = firstEdge[i + 1]!; e < end; e++) {
      const pid = edgePiece[e]!;
      if (pid < 0) continue;
      expected[pid] = expected[pid]! + a * edgeQ[e]! * beta[edgeEnd[e]!]!;
    }
  }
  return Math.log(Z) - c * len;
}

/** Viterbi; leaves the best path's edge indices (last first) in `path`; returns their count. */
export function ugViterbi(lat: LatticeBuffers, len: number, path: number[]): number {
  const bestScore = lat.bestScore;
  const bestEdge = lat.bestEdge;
  const edgeEnd = lat.edgeEnd;
  const edgeScore = lat.edgeScore;
  const firstEdge = lat.firstEdge;
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

/**
 * One pass over words [w0, w1): kind 0 = E-step (adds expected counts to `out`, returns the summed
 * log-likelihood), kind 1 = Viterbi piece frequencies (adds to `out`, returns the summed word freq).
 */
export function ugRunPass(
  kind: number,
  model: LatticeModel,
  data: Int32Array,
  offsets: Int32Array,
  freqs: Float64Array,
  w0: number,
  w1: number,
  out: Float64Array,
  lat: LatticeBuffers,
  c: number,
): number {
  let total = 0;
  const path: number[] = [];
  for (let w = w0; w < w1; w++) {
    const s = offsets[w]!;
    const len = offsets[w + 1]! - s;
    const f = freqs[w]!;
    ugBuildLattice(lat, model, data, s, len, -1);
    if (kind === 0) {
      let logZ = ugAddMarginalsLinear(lat, len, f, out, c);
      if (Number.isNaN(logZ)) logZ = ugAddMarginals(lat, len, f, out);
      total += f * logZ;
    } else {
      ugViterbi(lat, len, path);
      total += f;
      for (let k = 0; k < path.length; k++) {
        const pid = lat.edgePiece[path[k]!]!;
        if (pid >= 0) out[pid] = out[pid]! + f;
      }
    }
  }
  return total;
}
