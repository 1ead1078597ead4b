/**
 * Data parallelism over worker threads (--threads): the same run on 1, 2 and 3 threads gives the
 * same per-step losses and the same trained weights (up to float addition order), with SFT batches
 * whose rows count different numbers of targets; a run stopped after a checkpoint resumes on 2
 * threads exactly like the uninterrupted 2-thread run (LoRA dropout on); worker errors surface.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SafetensorsFile, readPeftAdapter } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadLlama } from '../src/model/io.js';
import { DataParallel } from '../src/train/data-parallel.js';
import { countedTargets, splitBatch, type Batch } from '../src/train/micro-batch.js';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';

const FIX = path.resolve(__dirname, '../../../test-fixtures');
let root: string;
let textDir: string;
let sftDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-parallel-'));
  textDir = path.join(root, 'text');
  sftDir = path.join(root, 'sft');
  await fs.mkdir(textDir);
  await fs.mkdir(sftDir);
  const lines = (await fs.readFile(path.join(FIX, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 120);
  await fs.writeFile(path.join(textDir, 'zh.txt'), lines.join('\n'));
  const records = JSON.parse(await fs.readFile(path.join(FIX, 'data/alpaca_zh_demo.json'), 'utf8')).slice(0, 24);
  await fs.writeFile(path.join(sftDir, 'train.json'), JSON.stringify(records.slice(0, 16)));
  await fs.writeFile(path.join(root, 'valid.json'), JSON.stringify(records.slice(16)));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('splitBatch', () => {
  const batch: Batch = {
    // 4 rows of 4; labels: row 0 counts 3, row 1 counts 1, row 2 counts 0, row 3 counts 2
    inputIds: Int32Array.from({ length: 16 }, (_, i) => i + 1),
    labels: Int32Array.from([0, 5, 6, 7, 0, -100, -100, 9, 0, -100, -100, -100, 0, 3, -100, 4]),
    batch: 4,
    seqLen: 4,
  };
  it('weights each shard by its counted targets and drops shards with none', () => {
    expect(countedTargets(batch)).toBe(6);
    const two = splitBatch(batch, 2);
    expect(two.map((s) => [s.batch.batch, s.weight])).toEqual([
      [2, 4 / 6],
      [2, 2 / 6],
    ]);
    expect(Array.from(two[1]!.batch.inputIds)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    const four = splitBatch(batch, 4);
    expect(four.map((s) => s.weight)).toEqual([3 / 6, 1 / 6, 2 / 6]); // row 2 counts nothing
    expect(splitBatch({ ...batch, labels: new Int32Array(16).fill(-100) }, 2)).toEqual([]);
    expect(splitBatch(batch, 9).length).toBe(3); // never more shards than rows
  });
});

async function pretrainFull(out: string, threads: number) {
  const args = await resolveArgs('pretrain', {
    stage: 'full',
    modelNameOrPath: path.join(FIX, 'tiny-llama'),
    tokenizerNameOrPath: path.join(FIX, 'tokenizers/chinese_sp.model'),
    datasetDir: textDir,
    dataCacheDir: path.join(root, 'cache'),
    outputDir: out,
    blockSize: '32',
    perDeviceTrainBatchSize: '4',
    gradientAccumulationSteps: '2',
    maxSteps: '4',
    learningRate: '3e-3',
    loggingSteps: '1',
    saveSteps: '100',
    validationSplitPercentage: '10',
    doEval: true,
    evalSteps: '4',
    threads: String(threads),
    noProgress: true,
  });
  return runTrainingSession(args, { backend: 'wasm' });
}

function sftArgs(out: string, threads: number, extra: Record<string, unknown> = {}) {
  return resolveArgs('sft', {
    modelNameOrPath: path.join(FIX, 'tiny-llama'),
    tokenizerNameOrPath: path.join(FIX, 'tokenizers/chinese_sp.model'),
    datasetDir: sftDir,
    validationFile: path.join(root, 'valid.json'),
    outputDir: out,
    maxSeqLength: '192',
    perDeviceTrainBatchSize: '4',
    perDeviceEvalBatchSize: '4',
    maxSteps: '6',
    learningRate: '1e-2',
    loraRank: '4',
    loraAlpha: '16',
    trainable: 'q_proj,v_proj,down_proj',
    modulesToSave: 'lm_head',
    loggingSteps: '1',
    saveSteps: '2',
    doEval: true,
    evalSteps: '6',
    threads: String(threads),
    noProgress: true,
    ...extra,
  });
}

async function sft(out: string, threads: number, extra: Record<string, unknown> = {}) {
  return runTrainingSession(await sftArgs(out, threads, extra), { backend: 'wasm' });
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]!));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
  return worst;
}

describe('--threads (data parallel)', () => {
  it('full pre-training on 2 threads matches 1 thread: losses, eval loss and every weight', async () => {
    const one = await pretrainFull(path.join(root, 'full-1'), 1);
    const two = await pretrainFull(path.join(root, 'full-2'), 2);
    expect(two.stepLosses.length).toBe(4);
    two.stepLosses.forEach((s, i) => expect(Math.abs(s.loss - one.stepLosses[i]!.loss)).toBeLessThan(1e-5 * one.stepLosses[i]!.loss));
    expect(Math.abs(two.evalLoss! - one.evalLoss!)).toBeLessThan(1e-5 * one.evalLoss!);
    // the weights moved, and by the same amount on both
    const a = await SafetensorsFile.open(path.join(root, 'full-1/model.safetensors'));
    const b = await SafetensorsFile.open(path.join(root, 'full-2/model.safetensors'));
    const base = await SafetensorsFile.open(path.join(FIX, 'tiny-llama/model.safetensors'));
    try {
      for (const name of ['model.layers.1.self_attn.q_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'lm_head.weight']) {
        const [wa, wb] = [await a.read(name), await b.read(name)];
        // lm_head was resized to the tokenizer: compare its first (original) rows with the base
        const w0 = await base.read(name);
        expect(maxRelDiff(wa.subarray(0, w0.length), w0), name).toBeGreaterThan(1e-3);
        expect(maxRelDiff(wa, wb), name).toBeLessThan(1e-4);
      }
    } finally {
      await Promise.all([a.close(), b.close(), base.close()]);
    }
  }, 240_000);

  it('SFT (rows with different counted targets, LoRA without dropout) on 3 threads matches 1 thread', async () => {
    const one = await sft(path.join(root, 'sft-1'), 1, { loraDropout: '0' });
    const three = await sft(path.join(root, 'sft-3'), 3, { loraDropout: '0' });
    expect(one.stepLosses.every((s) => s.loss > 1)).toBe(true);
    three.stepLosses.forEach((s, i) => expect(Math.abs(s.loss - one.stepLosses[i]!.loss)).toBeLessThan(1e-5 * one.stepLosses[i]!.loss));
    expect(Math.abs(three.evalLoss! - one.evalLoss!)).toBeLessThan(1e-5 * one.evalLoss!);
    const a = await readPeftAdapter(path.join(root, 'sft-1'));
    const b = await readPeftAdapter(path.join(root, 'sft-3'));
    for (const [key, t] of a.tensors) expect(maxRelDiff(t.data, b.tensors.get(key)!.data), key).toBeLessThan(1e-4);
  }, 240_000);

  it("a 2-thread run stopped after a checkpoint resumes with the uninterrupted run's losses (dropout on)", async () => {
    const straight = await sft(path.join(root, 'dp-straight'), 2, { loraDropout: '0.1' });
    // stop a fresh run right after step 4 (checkpoint-4 written at save-steps 2), then resume
    const stopped = path.join(root, 'dp-stopped');
    const args = await sftArgs(stopped, 2, { loraDropout: '0.1' });
    await expect(
      runTrainingSession(args, {
        backend: 'wasm',
        onStep: ({ step }) => {
          if (step === 4) throw new Error('stop here');
        },
      }),
    ).rejects.toThrow('stop here');
    const resumed = await sft(stopped, 2, { loraDropout: '0.1' });
    expect(resumed.resumedFrom).toMatch(/checkpoint-4$/);
    expect(resumed.stepLosses.map((s) => s.step)).toEqual([5, 6]);
    resumed.stepLosses.forEach((s) => expect(s.loss).toBe(straight.stepLosses[s.step - 1]!.loss));
    expect(resumed.evalLoss).toBe(straight.evalLoss);
  }, 240_000);

  it('refuses --threads 0; an error inside a worker surfaces with its cause and the pool keeps working', async () => {
    await expect(sft(path.join(root, 'bad-threads'), 0)).rejects.toThrow(/--threads must be a positive integer/);
    await initBackend('wasm');
    const model = await loadLlama(path.join(FIX, 'tiny-llama'));
    const params = [{ name: 'model.embed_tokens.weight', variable: model.namedVariables().get('model.embed_tokens.weight')! }];
    model.setTrainable((n) => n === 'model.embed_tokens.weight');
    const pool = await DataParallel.start({ threads: 2, backend: 'wasm', model, params, lora: undefined });
    try {
      const vocab = model.config.vocabSize;
      const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % vocab);
      const bad = Int32Array.from(ids);
      bad[13] = vocab + 5; // a label in the second half: the worker's shard
      await expect(pool.lossAndGrads(model, { inputIds: ids, labels: bad, batch: 4, seqLen: 4 }, 1)).rejects.toThrow(
        /worker thread failed: .*outside the vocabulary/s,
      );
      const ok = await pool.lossAndGrads(model, { inputIds: ids, labels: ids, batch: 4, seqLen: 4 }, 1);
      expect(ok.loss).toBeGreaterThan(0);
      for (const g of ok.grads.values()) g.dispose();
    } finally {
      await pool.close();
      model.dispose();
    }
  }, 60_000);
});
