import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { writeSafetensors } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from '../src/train/adamw.js';
import {
  OutputDirNotEmptyError,
  STATE_FORMAT,
  listCheckpoints,
  prepareOutputDir,
  readOptimizerState,
  readTrainerState,
  writeCheckpoint,
  type TrainerState,
} from '../src/train/checkpoint.js';
import { MetricsLog, readMetrics } from '../src/train/metrics.js';
import { renderTrainingPlot } from '../src/train/plot.js';
import { addTrainOptions, resolveArgs, TrainConfigError } from '../src/train/options.js';
import { Xoshiro128 as Rng } from '@cllama/core';

let root: string;
beforeAll(async () => {
  await tf.setBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-ckpt-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function state(step: number): TrainerState {
  return {
    format: STATE_FORMAT,
    globalStep: step,
    maxSteps: 10,
    epoch: step / 10,
    data: { epoch: 0, microBatch: step * 2, seed: 3, numMicroBatchesPerEpoch: 20 },
    rng: Rng.fromSeed(3).state(),
    scheduler: { type: 'cosine', baseLr: 1e-3, totalSteps: 10, warmupSteps: 1 },
    trainedTokens: step * 64,
    trainSeconds: step,
    trainable: ['w'],
    logHistory: [{ step, epoch: step / 10, loss: 5 - step * 0.1, learning_rate: 1e-3 }],
  };
}

describe('checkpoints', () => {
  it('writes, reads back, rotates to --save-total-limit and detects the latest', async () => {
    const out = path.join(root, 'rot');
    expect((await prepareOutputDir(out, { overwrite: false })).resumeFrom).toBeUndefined();
    const w = tf.variable(tf.tensor([1, 2, 3, 4], [2, 2]));
    const opt = new AdamW([{ name: 'w', variable: w }]);
    opt.step(new Map([['w', tf.tensor([0.5, -1, 2, 0], [2, 2])]]), 0.1);
    for (const step of [2, 4, 6, 8]) {
      await writeCheckpoint(
        out,
        {
          state: state(step),
          optimizer: await opt.exportState(),
          writeWeights: (dir) => writeSafetensors(path.join(dir, 'trainable.safetensors'), [{ name: 'w', shape: [2, 2], data: w.dataSync() as Float32Array }]),
        },
        2,
      );
    }
    expect((await listCheckpoints(out)).map((c) => c.step)).toEqual([6, 8]);
    // nothing but the two checkpoints: no temporaries or half-deleted folders left behind
    expect((await fs.readdir(out)).sort()).toEqual(['checkpoint-6', 'checkpoint-8']);
    const prepared = await prepareOutputDir(out, { overwrite: false });
    expect(prepared.resumeFrom).toBe(path.join(out, 'checkpoint-8'));
    const st = await readTrainerState(prepared.resumeFrom!);
    expect(st.globalStep).toBe(8);
    expect(st.rng).toEqual(Rng.fromSeed(3).state());
    const os = await readOptimizerState(prepared.resumeFrom!);
    expect(os.step).toBe(1);
    expect(Array.from(os.tensors.find((t) => t.name === 'exp_avg/w')!.data)).toEqual(Array.from((await opt.exportState()).tensors[0]!.data));
    expect(os.tensors.find((t) => t.name === 'exp_avg/w')!.data[0]).toBeCloseTo(0.05, 6);
  });

  it('refuses a non-empty output dir without checkpoints, unless --overwrite-output-dir', async () => {
    const out = path.join(root, 'busy');
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(path.join(out, 'notes.txt'), 'mine');
    await expect(prepareOutputDir(out, { overwrite: false })).rejects.toThrow(OutputDirNotEmptyError);
    await expect(prepareOutputDir(out, { overwrite: false })).rejects.toThrow(/--overwrite-output-dir/);
    // what a run killed before its first checkpoint leaves behind does not block a restart
    const early = path.join(root, 'early');
    await fs.mkdir(path.join(early, 'data_cache'), { recursive: true });
    await fs.writeFile(path.join(early, 'metrics.jsonl'), '');
    expect((await prepareOutputDir(early, { overwrite: false })).resumeFrom).toBeUndefined();
    await fs.mkdir(path.join(out, 'checkpoint-3'));
    await fs.writeFile(path.join(out, 'checkpoint-3', 'trainer_state.json'), JSON.stringify(state(3)));
    await fs.writeFile(path.join(out, 'metrics.jsonl'), '{}\n');
    const fresh = await prepareOutputDir(out, { overwrite: true });
    expect(fresh.resumeFrom).toBeUndefined();
    // only the trainer's own outputs are removed
    expect(await fs.readdir(out)).toEqual(['notes.txt']);
  });

  it('a killed write leaves no checkpoint-N, and its debris is cleaned at the next start', async () => {
    const out = path.join(root, 'killed');
    await prepareOutputDir(out, { overwrite: false });
    // what a write killed half way leaves: the hidden temporary folder with some files in it
    const debris = path.join(out, '.checkpoint-5.tmp-12345-abcd');
    await fs.mkdir(debris);
    await fs.writeFile(path.join(debris, 'optimizer.safetensors'), 'partial');
    expect(await listCheckpoints(out)).toEqual([]);
    // a write that fails half way (weights written, then an error) leaves nothing either
    await expect(
      writeCheckpoint(out, {
        state: state(7),
        optimizer: { step: 1, tensors: [] },
        writeWeights: async (dir) => {
          await fs.writeFile(path.join(dir, 'trainable.safetensors'), 'x');
          throw new Error('disk full');
        },
      }),
    ).rejects.toThrow('disk full');
    expect(await listCheckpoints(out)).toEqual([]);
    await prepareOutputDir(out, { overwrite: false });
    expect(await fs.readdir(out)).toEqual([]);
  });
});

describe('metrics, plot', () => {
  it('metrics.jsonl is rewritten from history on resume, then appended', async () => {
    const log = new MetricsLog(path.join(root));
    await log.reset([{ step: 1, epoch: 0.1, loss: 3 }]);
    await log.append({ step: 2, epoch: 0.2, loss: 2.5, learning_rate: 1e-4 });
    expect(await readMetrics(log.file)).toEqual([
      { step: 1, epoch: 0.1, loss: 3 },
      { step: 2, epoch: 0.2, loss: 2.5, learning_rate: 1e-4 },
    ]);
  });

  it('the SVG has a train-loss path, an eval-loss path and an lr path', () => {
    const h = [1, 2, 3, 4].map((s) => ({ step: s, epoch: s / 4, loss: 5 / s, learning_rate: 1e-3 * s }));
    const svg = renderTrainingPlot([...h, { step: 4, epoch: 1, eval_loss: 2 }, { step: 2, epoch: 0.5, eval_loss: 3 }], { title: 'run <1>' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(3);
    expect(svg).toContain('run &lt;1&gt;');
    expect(svg).toContain('eval loss');
  });
});

describe('options', () => {
  it('run_pt.sh flags in kebab-case, --config keys in snake_case, flags win; script-only flags reported as ignored', async () => {
    const cfg = path.join(root, 'cfg.json');
    await fs.writeFile(cfg, JSON.stringify({ learning_rate: 2e-4, lr_scheduler_type: 'cosine', 'warmup-ratio': 0.05, trainable: 'q_proj,v_proj', seed: 1 }));
    const cmd = addTrainOptions(new Command('pretrain'), 'pretrain').exitOverride();
    cmd.parse(
      [
        '--config',
        cfg,
        '--model-name-or-path',
        'm',
        '--tokenizer-name-or-path',
        't',
        '--dataset-dir',
        'd',
        '--output-dir',
        'o',
        '--seed',
        '7',
        '--stage',
        '2',
        '--gradient-accumulation-steps',
        '8',
        '--fp16',
        '--logging-first-step',
        'True',
        '--deepspeed',
        'ds.json',
      ],
      { from: 'user' },
    );
    const a = await resolveArgs('pretrain', cmd.opts());
    expect(a.learningRate).toBe(2e-4);
    expect(a.lrSchedulerType).toBe('cosine');
    expect(a.warmupRatio).toBe(0.05);
    expect(a.trainable).toEqual(['q_proj', 'v_proj']);
    expect(a.seed).toBe(7);
    expect(a.stage).toBe(2);
    expect(a.gradientAccumulationSteps).toBe(8);
    expect(a.loggingFirstStep).toBe(true);
    expect(a.ignored.sort()).toEqual(['deepspeed', 'fp16']);
  });

  it('bad values and unknown config keys give clear errors', async () => {
    const bad = path.join(root, 'bad.json');
    await fs.writeFile(bad, JSON.stringify({ learning_rte: 1 }));
    await expect(resolveArgs('sft', { config: bad, modelNameOrPath: 'm' })).rejects.toThrow(/unknown option 'learningRte'/);
    await expect(resolveArgs('sft', { modelNameOrPath: 'm', dryRun: true, maxSteps: 'ten' })).rejects.toThrow(TrainConfigError);
    await expect(resolveArgs('sft', { modelNameOrPath: 'm', dryRun: true, lrSchedulerType: 'poly' })).rejects.toThrow(/not one of linear/);
  });
});
