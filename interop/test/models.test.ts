/**
 * Base models, both ways, against transformers (fp32, eager attention): every checkpoint shape the
 * library reads — multi-head and grouped-query attention, tied embeddings, the recipe's resized
 * vocabularies (49,953 and 49,954 rows), single and sharded safetensors, F16 and BF16 files, linear
 * rope scaling, configs written by transformers 5 (rope_parameters) and by us (rope_theta/rope_scaling).
 *
 *   transformers → ours: folders written by save_pretrained are loaded by loadLlama;
 *   ours → transformers: folders written by saveLlama (our writer: F16, sharded, resized by our
 *   mean-resizing) are loaded by AutoModelForCausalLM.
 * Each: our logits and HF causal-LM loss (with -100 labels) within 1e-4 relative of transformers'.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../packages/trainer/src/backend.js';
import { loadLlama, saveLlama } from '../../packages/trainer/src/model/io.js';
import { FIXTURES, assertReady, labelsFor, maxRelativeError, oracle, readFloat32, relativeError, report, seededIds } from './helpers.js';

const TOL = 1e-4;
let root: string;

interface Case {
  name: string;
  dir: () => string;
  /** what the folder should hold (checks the shape really is the one named) */
  files?: RegExp[];
  dtype?: string;
}

/** Models transformers writes here (make_model jobs). */
const HF_MADE: Array<Record<string, unknown> & { name: string }> = [
  { name: 'hf-v49953-gqa', vocab: 49953, hidden: 16, intermediate: 40, layers: 2, heads: 4, kv_heads: 2, seed: 1 },
  { name: 'hf-v49954-tied-bf16', vocab: 49954, hidden: 16, intermediate: 40, layers: 2, heads: 2, kv_heads: 1, tie: true, dtype: 'bfloat16', seed: 2 },
  { name: 'hf-fp16-sharded', vocab: 300, hidden: 64, intermediate: 128, layers: 3, heads: 4, kv_heads: 4, dtype: 'float16', shard_size: '60KB', seed: 3 },
  {
    name: 'hf-rope-linear-gqa',
    vocab: 260,
    hidden: 32,
    intermediate: 64,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    rope_theta: 500000,
    rope_linear_factor: 2.5,
    seed: 4,
  },
  { name: 'hf-sharded-fp32-tied', vocab: 320, hidden: 32, intermediate: 96, layers: 2, heads: 4, kv_heads: 1, tie: true, shard_size: '40KB', seed: 5 },
];

const CASES: Case[] = [
  { name: 'fixture tiny-llama (MHA, untied)', dir: () => path.join(FIXTURES, 'tiny-llama') },
  { name: 'fixture tiny-llama-gqa (GQA, rope_theta 5e5)', dir: () => path.join(FIXTURES, 'tiny-llama-gqa') },
  { name: 'fixture tiny-llama-tied (tied, rope_scaling linear 4, 1 kv head)', dir: () => path.join(FIXTURES, 'tiny-llama-tied') },
  ...HF_MADE.map((m) => ({
    name: `transformers-written ${m.name}`,
    dir: () => path.join(root, m.name),
    files: m.shard_size ? [/^model-00001-of-0000\d\.safetensors$/, /^model\.safetensors\.index\.json$/] : [/^model\.safetensors$/],
  })),
  {
    name: 'ours: tiny-llama-tied resized to 49,954 (our mean-resizing), F16, sharded',
    dir: () => path.join(root, 'ours-tied-49954-f16-sharded'),
    files: [/index\.json$/],
  },
  { name: 'ours: tiny-llama-gqa resized to 49,953, F32, single file', dir: () => path.join(root, 'ours-gqa-49953'), files: [/^model\.safetensors$/] },
];

const hf = new Map<string, { loss: number; logits: Float32Array; shape: number[] }>();
const inputs = new Map<string, { ids: number[][]; labels: number[][] }>();

beforeAll(async () => {
  assertReady();
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-interop-models-'));
  await oracle(
    root,
    HF_MADE.map((m) => ({ op: 'make_model', ...m, out: path.join(root, m.name) })),
  );
  // our writer: resized with our seeded mean-resizing, then saved F16 + sharded / F32 single
  await initBackend('wasm');
  const tied = await loadLlama(path.join(FIXTURES, 'tiny-llama-tied'));
  tied.resizeTokenEmbeddings(49954, 7);
  await saveLlama(path.join(root, 'ours-tied-49954-f16-sharded'), tied, { dtype: 'F16', maxShardBytes: 1_500_000 });
  tied.dispose();
  const gqa = await loadLlama(path.join(FIXTURES, 'tiny-llama-gqa'));
  gqa.resizeTokenEmbeddings(49953, 3);
  await saveLlama(path.join(root, 'ours-gqa-49953'), gqa);
  gqa.dispose();

  const jobs: Array<Record<string, unknown>> = [];
  for (const c of CASES) {
    const config = JSON.parse(await fs.readFile(path.join(c.dir(), 'config.json'), 'utf8'));
    const ids = seededIds(2, 24, config.vocab_size, c.name.length * 7919 + 13);
    const labels = labelsFor(ids);
    inputs.set(c.name, { ids, labels });
    jobs.push({ op: 'forward', name: c.name, model: c.dir(), ids, labels, logits_out: path.join(root, `${jobs.length}.logits`) });
  }
  const run = await oracle<{ loss: number; shape: number[] }>(root, jobs);
  for (const [i, c] of CASES.entries()) {
    const r = run.results[i]!;
    hf.set(c.name, { loss: r.loss, shape: r.shape, logits: await readFloat32(path.join(root, `${i}.logits`)) });
  }
  report('python', run.versions);
});

afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('base models: our logits and loss = transformers (fp32, eager)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      for (const re of c.files ?? [])
        expect(
          (await fs.readdir(c.dir())).some((f) => re.test(f)),
          `${c.dir()} holds ${re}`,
        ).toBe(true);
      const { ids, labels } = inputs.get(c.name)!;
      const want = hf.get(c.name)!;
      const model = await loadLlama(c.dir());
      try {
        const idT = tf.tensor2d(ids, undefined, 'int32');
        const labT = tf.tensor2d(labels, undefined, 'int32');
        const logitsT = model.logits(idT);
        const lossT = model.loss(idT, labT);
        const logits = (await logitsT.data()) as Float32Array;
        const loss = (await lossT.data())[0]!;
        tf.dispose([idT, labT, logitsT, lossT]);
        expect(logitsT.shape).toEqual(want.shape);
        const logitErr = maxRelativeError(logits, want.logits);
        const lossErr = relativeError(loss, want.loss);
        report(c.name, {
          vocab: model.config.vocabSize,
          tied: String(model.config.tieWordEmbeddings),
          logits_rel: logitErr,
          loss_rel: lossErr,
          loss: want.loss,
        });
        expect(logitErr).toBeLessThan(TOL);
        expect(lossErr).toBeLessThan(TOL);
      } finally {
        model.dispose();
      }
    });
  }
});
