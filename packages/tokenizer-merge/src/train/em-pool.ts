/**
 * Parallel lattice passes for the unigram trainer. Words are split into `threads` contiguous
 * chunks of about equal length; the calling thread runs chunk 0, worker threads the others, all
 * reading the same SharedArrayBuffer-backed words, trie, scores and active flags. Each worker adds
 * into its own shared output array, which the caller then sums.
 *
 * The workers run the source text of ./lattice.ts's functions (Function.prototype.toString), so the
 * pool needs no separate worker file: it works the same from the built bundle, from tsx and in tests.
 */
import { Worker } from 'node:worker_threads';
import {
  ugAddMarginals,
  ugAddMarginalsLinear,
  ugBuildLattice,
  ugNewLattice,
  ugReserve,
  ugRunPass,
  ugViterbi,
  type LatticeBuffers,
  type LatticeModel,
} from './lattice.js';

export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4));
}
export function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, n) * 8));
}
export function sharedUint8(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(Math.max(1, n)));
}

export interface SharedWords {
  data: Int32Array;
  offsets: Int32Array;
  freqs: Float64Array;
}

/** The name a function is declared with in the running code (a bundler may have renamed it). */
function declName(f: (...args: never[]) => unknown): string {
  const m = /^function\s+([\w$]+)/.exec(f.toString());
  if (!m) throw new Error(`cannot ship ${f.name} to a worker: not a function declaration`);
  return m[1]!;
}

function workerSource(): string {
  const fns = [ugNewLattice, ugReserve, ugBuildLattice, ugAddMarginals, ugAddMarginalsLinear, ugViterbi, ugRunPass];
  return `
'use strict';
const { parentPort } = require('node:worker_threads');
var __name = (f) => f;
${fns.map((f) => f.toString()).join('\n')}
const lat = ${declName(ugNewLattice)}();
parentPort.on('message', (m) => {
  m.out.fill(0);
  const total = ${declName(ugRunPass)}(m.kind, m.model, m.data, m.offsets, m.freqs, m.w0, m.w1, m.out, lat, m.c);
  parentPort.postMessage(total);
});
`;
}

export class LatticePool {
  private readonly workers: Worker[] = [];
  private readonly outs: Float64Array[] = [];
  private readonly bounds: number[];
  private readonly lat: LatticeBuffers = ugNewLattice();

  constructor(
    private readonly words: SharedWords,
    threads: number,
    numPieces: number,
  ) {
    const nWords = words.freqs.length;
    const t = Math.max(1, Math.min(threads, nWords));
    // Chunk boundaries by cumulative length (work ∝ characters).
    const totalLen = words.offsets[nWords]!;
    this.bounds = [0];
    let w = 0;
    for (let k = 1; k < t; k++) {
      const target = (totalLen * k) / t;
      while (w < nWords && words.offsets[w]! < target) w++;
      this.bounds.push(w);
    }
    this.bounds.push(nWords);
    if (t > 1) {
      const src = workerSource();
      for (let k = 1; k < t; k++) {
        this.workers.push(new Worker(src, { eval: true }));
        this.outs.push(sharedFloat64(numPieces));
      }
    }
  }

  /** Runs one pass over all words; `out` receives the summed per-piece values. */
  async run(kind: 0 | 1, model: LatticeModel, out: Float64Array, c = 0): Promise<number> {
    const { data, offsets, freqs } = this.words;
    const pending = this.workers.map(
      (worker, k) =>
        new Promise<number>((resolve, reject) => {
          const onMessage = (v: number): void => {
            worker.off('error', onError);
            resolve(v);
          };
          const onError = (e: Error): void => {
            worker.off('message', onMessage);
            reject(e);
          };
          worker.once('message', onMessage);
          worker.once('error', onError);
          worker.postMessage({
            kind,
            model,
            data,
            offsets,
            freqs,
            w0: this.bounds[k + 1],
            w1: this.bounds[k + 2],
            out: this.outs[k],
            c,
          });
        }),
    );
    out.fill(0);
    let total = ugRunPass(kind, model, data, offsets, freqs, this.bounds[0]!, this.bounds[1]!, out, this.lat, c);
    const totals = await Promise.all(pending);
    for (let k = 0; k < totals.length; k++) {
      total += totals[k]!;
      const o = this.outs[k]!;
      for (let i = 0; i < out.length && i < o.length; i++) out[i] = out[i]! + o[i]!;
    }
    return total;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
