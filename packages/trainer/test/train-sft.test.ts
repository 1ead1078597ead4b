/** `sft` end to end: Alpaca records → LoRA fine-tuning continued from an existing PEFT adapter (--peft-path). */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readPeftAdapter } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';

const FIX = path.resolve(__dirname, '../../../test-fixtures');
let root: string;
let dataDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-sft-'));
  dataDir = path.join(root, 'sft');
  await fs.mkdir(dataDir);
  const records = JSON.parse(await fs.readFile(path.join(FIX, 'data/alpaca_zh_demo.json'), 'utf8')).slice(0, 48);
  await fs.writeFile(path.join(dataDir, 'train.json'), JSON.stringify(records.slice(0, 40)));
  await fs.writeFile(path.join(root, 'valid.json'), JSON.stringify(records.slice(40)));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('sft --peft-path', () => {
  it('continues the given adapter (its own r/targets win over the flags) and lowers the eval loss', async () => {
    const out = path.join(root, 'out');
    const args = await resolveArgs('sft', {
      modelNameOrPath: path.join(FIX, 'tiny-llama'),
      tokenizerNameOrPath: path.join(FIX, 'tokenizers/chinese_sp.model'),
      datasetDir: dataDir,
      validationFile: path.join(root, 'valid.json'),
      outputDir: out,
      peftPath: path.join(FIX, 'tiny-llama/lora'),
      loraRank: '8', // ignored: the adapter has r = 4
      maxSeqLength: '96',
      perDeviceTrainBatchSize: '4',
      perDeviceEvalBatchSize: '8',
      maxSteps: '10',
      learningRate: '1e-2',
      lrSchedulerType: 'cosine',
      warmupRatio: '0.03',
      loggingSteps: '5',
      doEval: true,
      evalSteps: '10',
      saveSteps: '5',
      noProgress: true,
    });
    const result = await runTrainingSession(args, { backend: 'wasm' });
    expect(result.numTrainExamples).toBe(40);
    expect(result.numEvalExamples).toBe(8);
    const evals = result.logHistory.filter((e) => e.eval_loss !== undefined);
    console.log(`sft eval loss ${evals[0]!.eval_loss} → ${evals.at(-1)!.eval_loss}`);
    expect(evals.at(-1)!.eval_loss!).toBeLessThan(evals[0]!.eval_loss! - 0.5);

    const start = await readPeftAdapter(path.join(FIX, 'tiny-llama/lora'));
    const trained = await readPeftAdapter(out);
    expect(trained.config.r).toBe(4);
    expect(trained.config.targetModules.sort()).toEqual(start.config.targetModules.sort());
    expect([...trained.tensors.keys()].sort()).toEqual([...start.tensors.keys()].sort());
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight';
    const moved = trained.tensors.get(key)!.data.some((x, i) => x !== start.tensors.get(key)!.data[i]);
    expect(moved).toBe(true);
    expect(await fs.readdir(out)).toContain('checkpoint-5');
  });
});

describe('SFT data: streamed into the on-disk cache', () => {
  it('tokenizes once, reuses the cache, and names the file and record of a bad one', async () => {
    const { loadTokenizer } = await import('@cllama/tokenizer-merge');
    const { prepareSftData, TrainDataError } = await import('../src/train/data.js');
    const tok = await loadTokenizer(path.join(FIX, 'tokenizers/chinese_sp.model'));
    const cacheRoot = path.join(root, 'sft-cache');
    const opts = { datasetDir: dataDir, cacheRoot, maxSeqLength: 96, validationSplitPercentage: 10, seed: 3 };
    const first = await prepareSftData(opts, tok);
    const second = await prepareSftData(opts, tok);
    try {
      expect(first.cacheHit).toBe(false);
      expect(second.cacheHit).toBe(true);
      expect(first.train.length + first.eval!.length).toBe(40);
      expect(second.train.length).toBe(first.train.length);
      const [a, b] = [first.train.batch([0, 5, 7]), second.train.batch([0, 5, 7])];
      expect(Array.from(b.inputIds)).toEqual(Array.from(a.inputIds));
      expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
      expect(Array.from(a.labels).some((l) => l === -100)).toBe(true); // the prompt is masked
    } finally {
      first.close();
      second.close();
    }
    const badDir = path.join(root, 'bad-sft');
    await fs.mkdir(badDir);
    await fs.writeFile(path.join(badDir, 'a.json'), JSON.stringify([{ instruction: 'x', output: 'y' }, { instruction: 'z' }]));
    await expect(prepareSftData({ ...opts, datasetDir: badDir }, tok)).rejects.toThrow(TrainDataError);
    await expect(prepareSftData({ ...opts, datasetDir: badDir }, tok)).rejects.toThrow(/a\.json.*missing field "output"/);
  });
});
