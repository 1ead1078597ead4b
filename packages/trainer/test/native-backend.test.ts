/**
 * The `native` backend (tfjs-cpu tensors, onnxruntime-node GEMMs: src/backends/native/): each replaced kernel
 * against tfjs-cpu, and the fallback to wasm, said on the CLI's backend line and in BackendInfo, when
 * onnxruntime-node cannot be used. (The PyTorch parity of the whole model on native runs in
 * model-parity.test.ts with the other backends.) The kernel checks are skipped, saying so, where
 * onnxruntime-node is not installed.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { ADAMW_KERNEL, HEAD_LOSS_GRAD_KERNEL, SUM_OF_SQUARES_KERNEL } from '../src/kernel-names.js';
import { adamwSimd } from '../src/backends/native/adamw-simd.js';
import { adamwUpdate } from '../src/backends/native/kernels/CllamaAdamW.js';
import { knownSumOfSquares, rememberSumOfSquares } from '../src/backends/native/known-sums.js';
import { loadOrt } from '../src/backends/native/ort.js';
import { ArrayPool } from '../src/backends/native/pool.js';
import { fusedLinearCrossEntropy, referenceLinearCrossEntropy } from '../src/model/lm-head-loss.js';
import { AdamW } from '../src/train/adamw.js';
import { globalNorm } from '../src/train/gradients.js';
import { TINY_LLAMA } from './helpers.js';

interface Golden {
  input_ids: number[][];
  labels: number[][];
  logits_sum: number;
  logits_abs_sum: number;
  logits_first_row: number[];
  logits_last_row: number[];
  loss: number;
  grad_norms: Record<string, number>;
}

const ort = await loadOrt({ env: {} });
if (!ort.ok) console.warn(`native-backend: kernel checks skipped, ${ort.reason}`);
else ort.runtime.dispose();

describe.skipIf(!ort.ok)('native kernels against the cpu backend', () => {
  it('matMul (every transpose flag, batched, broadcast B, fused bias), elementwise, softmax, split, segment sum and transposes agree to 1e-5', async () => {
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
      [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
      [[2, 3, 7, 5], [2, 3, 7, 4], true, false],
      [[4, 5, 7], [7, 3], false, false], // one B for every batch of A
      [[5, 7], [4, 7, 3], false, false], // broadcast A: stays on the cpu kernel
    ];
    const run = async (backend: 'cpu' | 'native') => {
      await initBackend(backend);
      const out: Float32Array[] = [];
      let seed = 1;
      for (const [as, bs, ta, tb] of cases) {
        const a = tf.randomNormal(as, 0, 1, 'float32', seed++);
        const b = tf.randomNormal(bs, 0, 1, 'float32', seed++);
        out.push(tf.matMul(a, b, ta, tb).dataSync() as Float32Array);
      }
      const a = tf.randomNormal([6, 9], 0, 1, 'float32', 99);
      const b = tf.randomNormal([9, 4], 0, 1, 'float32', 100);
      out.push(tf.fused.matMul({ a, b, bias: tf.range(0, 4, 1, 'float32') }).dataSync() as Float32Array);
      // elementwise overrides, both sides of the 32 Ki-element ORT threshold, broadcasting as the loss head does
      for (const [as, bs] of [
        [
          [256, 300],
          [256, 1],
        ],
        [[8, 5], [5]],
        [
          [2, 8, 64, 64],
          [1, 1, 64, 64],
        ],
        [[3, 4], []],
      ] as Array<[number[], number[]]>) {
        const x = tf.randomNormal(as, 0, 1, 'float32', seed++);
        const y = tf.add(tf.abs(tf.randomNormal(bs, 0, 1, 'float32', seed++)), 0.5);
        for (const t of [tf.add(x, y), tf.sub(x, y), tf.mul(x, y), tf.div(x, y), tf.exp(x), tf.sigmoid(x), tf.log(y), tf.softmax(x)])
          out.push(t.dataSync() as Float32Array);
        for (const part of tf.split(x, [1, as[as.length - 1]! - 1], -1)) out.push(part.dataSync() as Float32Array);
        out.push(tf.neg(x).dataSync() as Float32Array);
        for (const t of [tf.square(x), tf.sqrt(y), tf.rsqrt(y), tf.floor(tf.mul(x, 3))]) out.push(t.dataSync() as Float32Array);
        // reductions over trailing axes (the loop kernels) and over a leading one (the cpu kernel)
        for (const t of [tf.sum(x, -1), tf.max(x, -1, true), tf.mean(x, -1, true), tf.sum(x), tf.max(x, 0), tf.mean(x, as.length > 1 ? [-2, -1] : -1)])
          out.push(t.dataSync() as Float32Array);
        out.push(
          tf
            .slice(
              x,
              as.map((d) => (d > 1 ? 1 : 0)),
              as.map((d) => (d > 2 ? d - 2 : 1)),
            )
            .dataSync() as Float32Array,
        );
        out.push(
          tf
            .slice(
              x,
              as.map((_, i) => (i === 0 && as[0]! > 1 ? 1 : 0)),
              as.map((d, i) => (i === 0 && d > 1 ? d - 1 : -1)),
            )
            .dataSync() as Float32Array,
        );
      }
      out.push(tf.unsortedSegmentSum(tf.randomNormal([6, 5], 0, 1, 'float32', 7), tf.tensor1d([3, 0, 3, 9, 1, 0], 'int32'), 10).dataSync() as Float32Array);
      const big = tf.randomNormal([64, 48, 32], 0, 1, 'float32', 101);
      out.push(tf.transpose(big, [2, 0, 1]).dataSync() as Float32Array);
      out.push(tf.transpose(tf.reshape(big, [3072, 32])).dataSync() as Float32Array);
      return out;
    };
    const cpu = await run('cpu');
    const native = await run('native');
    expect(native.length).toBe(cpu.length);
    native.forEach((n, i) => {
      expect(n.length, `case ${i}`).toBe(cpu[i]!.length);
      let maxErr = 0;
      for (let j = 0; j < n.length; j++) maxErr = Math.max(maxErr, Math.abs(n[j]! - cpu[i]![j]!));
      expect(maxErr, `case ${i}`).toBeLessThan(1e-5);
    });
  });
});

describe.skipIf(!ort.ok)('native fused kernels and output recycling', () => {
  it('gather (any axis, slices long and short, indices of any shape) and constant pad equal the cpu kernels exactly; a bad index is refused', async () => {
    const run = async (backend: 'cpu' | 'native') => {
      await initBackend(backend);
      const x = tf.randomNormal([5, 7, 20], 0, 1, 'float32', 3);
      const out: Float32Array[] = [];
      out.push(tf.gather(x, tf.tensor1d([4, 0, 4, 2], 'int32')).dataSync() as Float32Array); // rows of 140
      out.push(
        tf
          .gather(
            x,
            tf.tensor2d(
              [
                [6, 1],
                [0, 0],
              ],
              undefined,
              'int32',
            ),
            1,
          )
          .dataSync() as Float32Array,
      ); // slices of 20
      out.push(tf.gather(x, tf.tensor1d([19, 3, 0], 'int32'), 2).dataSync() as Float32Array); // single elements
      out.push(tf.gather(tf.reshape(x, [-1]), tf.tensor1d([699, 0, 350], 'int32')).dataSync() as Float32Array);
      out.push(
        tf
          .pad(x, [
            [1, 0],
            [0, 2],
            [3, 1],
          ])
          .dataSync() as Float32Array,
      );
      out.push(
        tf
          .pad(
            x,
            [
              [0, 0],
              [2, 2],
              [0, 0],
            ],
            -1.5,
          )
          .dataSync() as Float32Array,
      );
      out.push(
        tf
          .pad(tf.reshape(x, [35, 20]), [
            [0, 1],
            [0, 0],
          ])
          .dataSync() as Float32Array,
      );
      expect(() => tf.gather(x, tf.tensor1d([5], 'int32'))).toThrow(/index value 5 is not in \[0, 4\]/);
      return out;
    };
    const cpu = await run('cpu');
    const native = await run('native');
    expect(native).toEqual(cpu);
  });

  it('AdamW: the fused one-pass update equals the op chain (run on cpu) to float32 rounding, over three steps, with and without a clipping factor', async () => {
    const run = async (backend: 'cpu' | 'native') => {
      await initBackend(backend);
      const p = tf.variable(tf.randomNormal([300, 70], 0, 0.5, 'float32', 1), true, `adam-p-${backend}`);
      const q = tf.variable(tf.randomNormal([70], 0, 0.5, 'float32', 2), true, `adam-q-${backend}`);
      const opt = new AdamW([
        { name: 'p', variable: p },
        { name: 'q', variable: q, weightDecay: 0 },
      ]);
      for (let step = 0; step < 3; step++) {
        const grads = new Map([
          ['p', tf.randomNormal([300, 70], 0, 1, 'float32', 10 + step)],
          ['q', tf.randomNormal([70], 0, 1, 'float32', 20 + step)],
        ]);
        opt.step(grads, 1e-2, step === 1 ? 0.37 : 1); // the clipping factor, folded into the update
        tf.dispose([...grads.values()]);
      }
      const state = await opt.exportState();
      const out = [Float32Array.from(p.dataSync()), Float32Array.from(q.dataSync()), ...state.tensors.map((t) => Float32Array.from(t.data))];
      tf.dispose([p, q]);
      return out;
    };
    const chain = await run('cpu');
    const fused = await run('native');
    expect(tf.getKernel(ADAMW_KERNEL, 'native')).toBeDefined();
    expect(tf.getKernel(ADAMW_KERNEL, 'cpu')).toBeUndefined();
    fused.forEach((f, i) => {
      // float32 rounding: the chain rounds after every op, the fused loop once per stored value
      const scale = chain[i]!.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let j = 0; j < f.length; j++) expect(Math.abs(f[j]! - chain[i]![j]!), `tensor ${i} [${j}]`).toBeLessThanOrEqual(1e-6 * scale);
    });
  });

  it('the head with its gradient in one graph: the reference loss and gradients (trained and frozen head, chunks, repeated and ignored targets); the gradient norm reads the Σ x² its producers remembered', async () => {
    await initBackend('native');
    expect(tf.getKernel(HEAD_LOSS_GRAD_KERNEL, 'native')).toBeDefined();
    const [n, hidden, vocab] = [40, 24, 300];
    const targets = Int32Array.from({ length: n }, (_, i) => (i % 7 === 3 ? -100 : (i * 37) % 50)); // rows repeat targets
    const h = tf.randomNormal([n, hidden], 0, 1, 'float32', 11);
    const w0 = tf.randomNormal([vocab, hidden], 0, 0.3, 'float32', 12);
    const sumSquares = (x: Float32Array) => x.reduce((a, v) => a + v * v, 0);
    const ref = tf.grads((hh: tf.Tensor, ww: tf.Tensor) => referenceLinearCrossEntropy(hh as tf.Tensor2D, ww as tf.Tensor2D, targets));
    const [refDh, refDw] = ref([h, w0]).map((g) => g.dataSync() as Float32Array);
    const refLoss = referenceLinearCrossEntropy(h as tf.Tensor2D, w0 as tf.Tensor2D, targets).dataSync()[0]!;
    const close = (a: Float32Array, b: Float32Array, what: string) => {
      const scale = b.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let j = 0; j < b.length; j++) expect(Math.abs(a[j]! - b[j]!), `${what} [${j}]`).toBeLessThan(1e-5 * Math.max(scale, 1));
    };
    for (const chunk of [n, 16]) {
      for (const factor of [1, 3]) {
        // a trained head: loss, d hidden and d head, scaled by the caller's dy
        const w = tf.variable(w0, true, `head-${chunk}-${factor}`);
        const f = (hh: tf.Tensor, ww: tf.Tensor) =>
          tf.mul(fusedLinearCrossEntropy(hh as tf.Tensor2D, ww as tf.Tensor2D, targets, { chunkTokens: chunk }), factor) as tf.Scalar;
        const { value, grads } = tf.valueAndGrads(f)([h, w]);
        expect(Math.abs(value.dataSync()[0]! - factor * refLoss)).toBeLessThan(1e-5 * factor * refLoss);
        close(
          grads[0]!.dataSync() as Float32Array,
          refDh!.map((x) => factor * x),
          `dh chunk ${chunk} × ${factor}`,
        );
        close(
          grads[1]!.dataSync() as Float32Array,
          refDw!.map((x) => factor * x),
          `dw chunk ${chunk} × ${factor}`,
        );
        if (factor === 1) {
          // the kernel left Σ dw² for the gradient norm: equal to the sum over the values it returned
          const remembered = knownSumOfSquares(grads[1]!.dataId);
          expect(remembered).toBeDefined();
          const direct = sumSquares(grads[1]!.dataSync() as Float32Array);
          expect(Math.abs(remembered! - direct)).toBeLessThan(1e-5 * direct);
        }
        tf.dispose([value, w, ...grads]);
      }
      // a frozen head: d hidden only
      const frozen = tf.variable(w0, false, `head-frozen-${chunk}`);
      const { value, grad } = tf.valueAndGrad((hh: tf.Tensor) =>
        fusedLinearCrossEntropy(hh as tf.Tensor2D, frozen as tf.Tensor2D, targets, { chunkTokens: chunk }),
      )(h);
      expect(Math.abs(value.dataSync()[0]! - refLoss)).toBeLessThan(1e-5 * refLoss);
      close(grad.dataSync() as Float32Array, refDh!, `dh chunk ${chunk}, frozen head`);
      tf.dispose([value, grad, frozen]);
    }
    // the embedding's gradient (a segment sum): Σ x² over the rows it touched, read by globalNorm
    const rows = tf.randomNormal([9, 5], 0, 1, 'float32', 13);
    const seg = tf.unsortedSegmentSum(rows, tf.tensor1d([3, 0, 3, 9, 1, 0, 2, 2, 7], 'int32'), 1000);
    const segSquares = sumSquares(seg.dataSync() as Float32Array);
    expect(Math.abs(knownSumOfSquares(seg.dataId)! - segSquares)).toBeLessThan(1e-6 * segSquares);
    const plain = tf.randomNormal([30], 0, 1, 'float32', 14);
    const norm = await globalNorm(
      new Map([
        ['seg', seg],
        ['plain', plain],
      ]),
    );
    expect(Math.abs(norm - Math.sqrt(segSquares + sumSquares(plain.dataSync() as Float32Array)))).toBeLessThan(1e-5 * norm);
    // the kernel reads a remembered sum instead of summing again: a sum planted on a fresh tensor is what it returns
    const planted = tf.randomNormal([8], 0, 1, 'float32', 15);
    rememberSumOfSquares(planted.dataId, 42);
    const read = tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, { x: planted }) as tf.Tensor;
    expect(read.dataSync()[0]).toBe(42);
    tf.dispose([h, w0, rows, seg, plain, planted, read]);
  });

  it('AdamW updates its state in place once the arrays are exclusively its own, never an array that was read out or that another tensor shares', async () => {
    const run = async (backend: 'cpu' | 'native') => {
      await initBackend(backend);
      const p = tf.variable(tf.randomNormal([300, 70], 0, 0.5, 'float32', 1), true, `inplace-p-${backend}`);
      const tensorsBefore = tf.memory().numTensors;
      const opt = new AdamW([{ name: 'p', variable: p }]);
      expect(tf.memory().numTensors - tensorsBefore).toBe(2); // the two moments, nothing else kept
      const valuesOf = (t: tf.Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: unknown } } }).data.get(t.dataId).values;
      const moment = (opt as unknown as { slots: Array<{ m: tf.Variable }> }).slots[0]!.m;
      const firstMoment = valuesOf(moment);
      const arrays: unknown[] = [];
      const held: Array<{ step: number; values: Float32Array; copy: Float32Array }> = [];
      let alias: tf.Tensor | undefined;
      for (let step = 0; step < 5; step++) {
        if (step === 2) {
          const values = p.dataSync() as Float32Array; // read out: must keep its values
          held.push({ step, values, copy: Float32Array.from(values) });
        }
        if (step === 3) alias = tf.reshape(p, [70, 300]); // shares p's data
        const grads = new Map([['p', tf.randomNormal([300, 70], 0, 1, 'float32', 10 + step)]]);
        opt.step(grads, 1e-2);
        tf.dispose([...grads.values()]);
        arrays.push(valuesOf(p));
        // the moments start as zeros from the pool, the variable's alone: updated in place from the first step
        if (backend === 'native' && step < 2) expect(valuesOf(moment)).toBe(firstMoment);
      }
      const aliasValues = Float32Array.from(alias!.dataSync());
      const out = { p: Float32Array.from(p.dataSync()), aliasValues, arrays, held };
      tf.dispose([p, alias!]);
      opt.dispose();
      return out;
    };
    const chain = await run('cpu');
    const native = await run('native');
    // the same values as the chain's
    const scale = chain.p.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    for (let j = 0; j < chain.p.length; j++) expect(Math.abs(native.p[j]! - chain.p[j]!)).toBeLessThanOrEqual(1e-6 * scale);
    // steps 1→2 and 4→5 rewrite the array in place; after the read-out (step 3) and under the alias (step 4) a new one
    expect(native.arrays[1]).toBe(native.arrays[0]);
    expect(native.arrays[2]).not.toBe(native.arrays[1]);
    expect(native.arrays[3]).not.toBe(native.arrays[2]);
    expect(native.arrays[4]).toBe(native.arrays[3]);
    // what was read out and what the alias holds kept their values
    expect(Array.from(native.held[0]!.values)).toEqual(Array.from(native.held[0]!.copy));
    for (let j = 0; j < chain.aliasValues.length; j++) expect(Math.abs(native.aliasValues[j]! - chain.aliasValues[j]!)).toBeLessThanOrEqual(1e-6 * scale);
  });

  it('recycles a disposed output array, but never one that was read out or that another tensor views', async () => {
    await initBackend('native');
    const a = tf.randomNormal([256, 300], 0, 1, 'float32', 3);
    const b = tf.randomNormal([300, 200], 0, 1, 'float32', 4);
    // read out, then disposed: the array handed out must keep its values through later products
    const read = tf.matMul(a, b);
    const values = read.dataSync() as Float32Array;
    const copy = Float32Array.from(values);
    read.dispose();
    const later = [tf.matMul(tf.neg(a), b), tf.mul(tf.matMul(a, b), 2), tf.matMul(a, tf.neg(b))];
    expect(Array.from(values)).toEqual(Array.from(copy));
    // an unread output is reused for the next product of its size: the pool works at all
    const backend = tf.backend() as unknown as { pool: { bytes: number } };
    const before = backend.pool.bytes;
    tf.dispose(later);
    expect(backend.pool.bytes).toBeGreaterThan(before);
    const reused = tf.matMul(tf.randomNormal([256, 300], 0, 1, 'float32', 5), b);
    expect(backend.pool.bytes).toBeLessThan(before + 3 * 256 * 200 * 4);
    // …and its (stale) contents are fully overwritten: the product equals the cpu backend's
    const native = Float32Array.from(reused.dataSync());
    await initBackend('cpu');
    const expected = tf.matMul(tf.randomNormal([256, 300], 0, 1, 'float32', 5), tf.randomNormal([300, 200], 0, 1, 'float32', 4)).dataSync();
    let maxErr = 0;
    for (let j = 0; j < native.length; j++) maxErr = Math.max(maxErr, Math.abs(native[j]! - expected[j]!));
    expect(maxErr).toBeLessThan(1e-4);
    await initBackend('native');
    tf.dispose([a, b, reused]);
  });
});

describe('AdamW in WebAssembly SIMD', () => {
  it('equals the JS loop to float32 rounding for every length (whole blocks, partial blocks, tails of 1–3), in place or into new arrays', () => {
    const update = adamwSimd();
    expect(update).toBeDefined(); // Node 20 has WebAssembly SIMD
    const attrs = {
      decayFactor: 1 - 3e-4,
      beta1: 0.9,
      beta2: 0.999,
      bc2Sqrt: Math.sqrt(1 - 0.999 ** 3),
      eps: 1e-8,
      stepSize: 1e-3 / (1 - 0.9 ** 3),
      gradScale: 0.37,
    };
    for (const n of [1, 3, 4, 8191, 8192, 8193, 20003]) {
      const wave = (k: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * scale);
      const [p, g, m] = [wave(1, 0.5), wave(2, 2), wave(3, 0.1)];
      const v = wave(4, 0.01).map((x) => x * x);
      const ref = adamwUpdate(p, g, m, v, attrs);
      for (const inPlace of [false, true]) {
        const [pp, mm, vv] = [p.slice(), m.slice(), v.slice()];
        const r = update!(pp, g, mm, vv, attrs, (length) => new Float32Array(length), { p: inPlace, m: inPlace, v: inPlace });
        expect(r.p === pp, `n ${n}`).toBe(inPlace);
        if (!inPlace) expect(Array.from(pp)).toEqual(Array.from(p)); // inputs untouched
        for (const [name, got, want] of [
          ['p', r.p, ref.p],
          ['m', r.m, ref.m],
          ['v', r.v, ref.v],
        ] as const) {
          let [scale, err] = [0, 0];
          for (let i = 0; i < n; i++) [scale, err] = [Math.max(scale, Math.abs(want[i]!)), Math.max(err, Math.abs(got[i]! - want[i]!))];
          expect(err, `${name}, n ${n}, in place ${inPlace}`).toBeLessThanOrEqual(4e-7 * scale);
        }
      }
    }
  });
});

describe('ArrayPool', () => {
  it('reuses only arrays it allocated, backing exactly one tensor, never read out; evicts past its cap', () => {
    const pool = new ArrayPool(4 * 1000);
    const id = () => ({});
    const x = pool.alloc(100);
    const xId = id();
    pool.registered(x, xId);
    pool.released(x, xId);
    expect(pool.alloc(100)).toBe(x);
    // read out: not reused
    const y = pool.alloc(100);
    const yId = id();
    pool.registered(y, yId);
    pool.escaped(y);
    pool.released(y, yId);
    expect(pool.alloc(100)).not.toBe(y);
    // a second tensor over a view of it (tfjs-cpu's slice does this): not reused
    const z = pool.alloc(100);
    const zId = id();
    pool.registered(z, zId);
    pool.registered(z.subarray(10, 20), id());
    pool.released(z, zId);
    expect(pool.alloc(100)).not.toBe(z);
    // user data is never taken
    const user = new Float32Array(100);
    const userId = id();
    pool.registered(user, userId);
    pool.released(user, userId);
    expect(pool.bytes).toBe(0);
    // the cap: 1000 floats; three arrays of 400 keep the two newest
    const w = [pool.alloc(400), pool.alloc(400), pool.alloc(400)];
    for (const a of w) {
      const aId = id();
      pool.registered(a, aId);
      pool.released(a, aId);
    }
    expect(pool.bytes).toBe(3200);
    expect(pool.alloc(400)).toBe(w[2]);
    expect(pool.alloc(400)).toBe(w[1]);
    expect(pool.alloc(400)).not.toBe(w[0]);
  });

  it("hands an exclusive array over to a new tensor: the old one's release leaves it, the new one's recycles it", () => {
    const pool = new ArrayPool(4 * 1000);
    const a = pool.alloc(100);
    const [oldId, newId] = [{}, {}];
    expect(pool.exclusive(a, oldId)).toBe(false); // not registered yet
    pool.registered(a, oldId);
    expect(pool.exclusive(a, oldId)).toBe(true);
    expect(pool.exclusive(a, newId)).toBe(false);
    pool.handOver(a);
    pool.registered(a, newId);
    pool.released(a, oldId); // the old tensor goes: the array is still the new one's
    expect(pool.bytes).toBe(0);
    expect(pool.exclusive(a, newId)).toBe(true);
    pool.released(a, newId);
    expect(pool.bytes).toBe(400);
    // read out: never exclusive again
    const b = pool.alloc(100);
    const bId = {};
    pool.registered(b, bId);
    pool.escaped(b);
    expect(pool.exclusive(b, bId)).toBe(false);
  });
});

describe('native fallback', () => {
  it('CLLAMA_NATIVE_DISABLE=1: --backend native falls back to wasm, says so on stderr, and still scores', async () => {
    const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
    const ids = path.join(TINY_LLAMA, 'golden.json');
    const golden = JSON.parse(readFileSync(ids, 'utf8')) as Golden;
    const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const tmp = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'cllama-native-'));
    try {
      writeFileSync(path.join(tmp, 'ids.json'), JSON.stringify(golden.input_ids));
      const r = await promisify(execFile)(
        'node',
        [cli, 'score', '--model', TINY_LLAMA, '--input-ids', path.join(tmp, 'ids.json'), '--json', '--backend', 'native'],
        {
          env: { ...process.env, CLLAMA_NATIVE_DISABLE: '1' },
        },
      );
      expect(r.stderr.trim()).toBe(
        'cllama-train: backend wasm (@tensorflow/tfjs-backend-wasm): native backend unavailable: CLLAMA_NATIVE_DISABLE=1 is set; fell back to wasm',
      );
      expect(JSON.parse(r.stdout).backend).toBe('wasm');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('BackendInfo carries the reason, in-process', async () => {
    process.env.CLLAMA_NATIVE_DISABLE = '1';
    try {
      const info = await initBackend('native');
      expect(info.name).toBe('wasm');
      expect(info.fallbackReason).toBe('native backend unavailable: CLLAMA_NATIVE_DISABLE=1 is set');
    } finally {
      delete process.env.CLLAMA_NATIVE_DISABLE;
    }
  });
});
