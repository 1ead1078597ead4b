/**
 * End-to-end training runs on the tiny LLaMA fixture (hidden 64, 2 layers), resized to the Chinese
 * SentencePiece vocabulary (20,000 pieces), on bundled Chinese text.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HFCheckpoint } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadLlama } from '../src/model/io.js';
import { readMetrics } from '../src/train/metrics.js';
import { resolveArgs, type TrainArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';

const FIX = path.resolve(__dirname, '../../../test-fixtures');
const TINY = path.join(FIX, 'tiny-llama');
const ZH_TOKENIZER = path.join(FIX, 'tokenizers/chinese_sp.model');
let root: string;
let textDir: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-e2e-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  await fs.copyFile(path.join(FIX, 'train/zh_text.txt'), path.join(textDir, 'zh_text.txt'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function args(mode: 'pretrain' | 'sft', outputDir: string, extra: Record<string, unknown>): Promise<TrainArgs> {
  return resolveArgs(mode, {
    modelNameOrPath: TINY,
    tokenizerNameOrPath: ZH_TOKENIZER,
    datasetDir: textDir,
    outputDir,
    blockSize: '64',
    perDeviceTrainBatchSize: '4',
    perDeviceEvalBatchSize: '8',
    validationSplitPercentage: '5',
    seed: '11',
    noProgress: true,
    ...extra,
  });
}

describe('pretrain stage 1 (embeddings only)', () => {
  it('changes only embed_tokens, keeps the tensor count flat, writes model + logs; the data cache is reused', async () => {
    const out = path.join(root, 'stage1');
    const counts: number[] = [];
    const a = await args('pretrain', out, {
      stage: '1',
      maxSteps: '6',
      learningRate: '2e-3',
      loggingSteps: '1',
      saveSteps: '3',
      saveTotalLimit: '1',
      weightDecay: '0.01',
      lrSchedulerType: 'cosine',
      warmupRatio: '0.2',
    });
    const result = await runTrainingSession(a, { backend: 'wasm', onStep: (s) => void counts.push(s.numTensors) });
    expect(result.globalStep).toBe(6);
    expect(result.cacheHit).toBe(false);
    // no leak: the same number of live tensors after every step
    expect(new Set(counts).size).toBe(1);
    // HF's cosine schedule with ceil(0.2 · 6) = 2 warmup steps; the logged lr is the one after the step
    const lrs = result.logHistory.filter((e) => e.learning_rate !== undefined).map((e) => e.learning_rate!);
    const cosine = (k: number) => (k < 2 ? (2e-3 * k) / 2 : 2e-3 * 0.5 * (1 + Math.cos((Math.PI * (k - 2)) / 4)));
    lrs.forEach((lr, i) => expect(lr).toBeCloseTo(cosine(i + 1), 12));

    const files = await fs.readdir(out);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.model',
      'trainer_state.json',
      'metrics.jsonl',
      'training_plot.svg',
      'all_results.json',
      'checkpoint-6',
    ])
      expect(files).toContain(f);
    expect(files.filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-6']); // --save-total-limit 1
    const metrics = await readMetrics(path.join(out, 'metrics.jsonl'));
    expect(metrics.filter((m) => m.loss !== undefined).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);

    // every weight but embed_tokens is bit-identical to the (resized) starting model
    const base = await loadLlama(TINY);
    base.resizeTokenEmbeddings(20000, a.seed);
    const trained = await HFCheckpoint.open(out);
    try {
      expect(trained.config.vocabSize).toBe(20000);
      let changed = 0;
      for (const [name, v] of base.namedVariables()) {
        const after = await trained.read(name);
        const before = v.dataSync() as Float32Array;
        const same = after.length === before.length && after.every((x, i) => Object.is(x, before[i]));
        if (name === 'model.embed_tokens.weight') expect(same).toBe(false);
        else expect(same, name).toBe(true);
        if (!same) changed++;
      }
      expect(changed).toBe(1);
    } finally {
      await trained.close();
      base.dispose();
    }

    // a second run over the same text reuses the tokenized cache
    const again = await runTrainingSession(
      { ...a, outputDir: path.join(root, 'stage1b'), dataCacheDir: path.join(out, 'data_cache'), maxSteps: 1 },
      { backend: 'wasm' },
    );
    expect(again.cacheHit).toBe(true);
  });
});

describe('training lowers eval perplexity on Chinese text', () => {
  it('stage 2 (LoRA + embed_tokens/lm_head) cuts held-out perplexity by more than half', async () => {
    const out = path.join(root, 'ppl');
    const a = await args('pretrain', out, {
      stage: '2',
      maxSteps: '24',
      learningRate: '6e-3',
      loggingSteps: '6',
      evalSteps: '12',
      doEval: true,
      saveSteps: '1000',
      loraRank: '8',
      loraAlpha: '32',
      loraDropout: '0.05',
      trainable: 'q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj',
      lrSchedulerType: 'cosine',
      warmupRatio: '0.05',
    });
    const counts: number[] = [];
    const result = await runTrainingSession(a, { backend: 'wasm', onStep: (s) => void counts.push(s.numTensors) });
    expect(new Set(counts).size).toBe(1); // LoRA + dropout + eval steps leak nothing either
    const evals = result.logHistory.filter((e) => e.eval_perplexity !== undefined);
    const first = evals[0]!;
    const last = evals.at(-1)!;
    console.log(
      `eval perplexity on held-out Chinese blocks (${result.numEvalExamples} × 64 tokens): step 0 ${first.eval_perplexity} → step ${last.step} ${last.eval_perplexity}; ${result.tokensPerSecond.toFixed(0)} tok/s`,
    );
    expect(first.step).toBe(0);
    expect(last.step).toBe(24);
    expect(last.eval_perplexity!).toBeLessThan(first.eval_perplexity! / 2);
    // the output is a PEFT adapter with the trained embeddings as modules_to_save
    const cfg = JSON.parse(await fs.readFile(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg.r).toBe(8);
    expect(cfg.modules_to_save).toEqual(['embed_tokens', 'lm_head']);
  });
});
