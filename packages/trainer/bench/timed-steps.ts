/**
 * The benches' measurement: optimizer steps (forward + backward + clip + AdamW) through the trainer's
 * own loop, runTrainingLoop, with no evaluation, checkpoint or final save, on the batches of `data`.
 * Returns each step's seconds; the first one includes kernel compilation and first allocations, so
 * callers usually report the steps after it. Used by bench/train.ts, bench/lora-step.ts and the GPU kit.
 *
 * The trainer comes in as an argument (`trainer`: its public API's `runTrainingLoop` and `loopModel`):
 * this package's benches pass src/index.ts, the GPU kit passes the built `@cllama/trainer`, so a bundle
 * holds one copy of it. Only types are imported here; the two copies' classes differ nominally (private
 * members), so the trainer and its model are taken structurally and used as src/index.ts types them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type * as trainerApi from '../src/index.js';
import type { BatchSource, DataParallel, LlamaModel } from '../src/index.js';

/** The trainer's `runTrainingLoop` and `loopModel` (from src/index.ts or `@cllama/trainer`). */
export type TimedStepsTrainer = Record<'runTrainingLoop' | 'loopModel', (...args: never[]) => unknown>;

export interface TimedStepsOptions {
  /** Sequences per step. */
  batch: number;
  /** Optimizer steps to run (and time). */
  steps: number;
  /** Data-parallel worker threads (wasm/cpu), when the bench measures them. */
  dataParallel?: DataParallel;
  /** Called after each optimizer step (e.g. to take a kernel profile of that step). */
  onStep?: (step: number) => void;
}

export async function timedTrainingSteps(
  trainer: TimedStepsTrainer,
  model: object,
  params: Array<{ name: string; variable: tf.Variable }>,
  data: BatchSource,
  opts: TimedStepsOptions,
): Promise<number[]> {
  const api = trainer as unknown as Pick<typeof trainerApi, 'runTrainingLoop' | 'loopModel'>;
  const out = await mkdtemp(path.join(tmpdir(), 'cllama-bench-steps-'));
  const stamps: number[] = [];
  const t0 = performance.now();
  try {
    await api.runTrainingLoop(
      api.loopModel(model as LlamaModel),
      params,
      data,
      undefined,
      { writeWeights: async () => undefined, restoreWeights: async () => undefined, writeFinal: async () => undefined },
      {
        outputDir: out,
        seed: 0,
        perDeviceTrainBatchSize: opts.batch,
        perDeviceEvalBatchSize: opts.batch,
        gradientAccumulationSteps: 1,
        numTrainEpochs: 1,
        maxSteps: opts.steps,
        learningRate: 1e-4,
        lrSchedulerType: 'constant',
        warmupRatio: 0,
        warmupSteps: 0,
        weightDecay: 0.01,
        adamBeta1: 0.9,
        adamBeta2: 0.999,
        adamEpsilon: 1e-8,
        maxGradNorm: 1,
        loggingSteps: 1_000_000,
        loggingFirstStep: false,
        evalSteps: undefined,
        doEval: false,
        saveSteps: 1_000_000,
        saveTotalLimit: 1,
        resumeFrom: undefined,
        progress: false,
        onStep: () => {
          stamps.push(performance.now());
          opts.onStep?.(stamps.length);
        },
        dataParallel: opts.dataParallel,
      },
    );
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  return [stamps[0]! - t0, ...stamps.slice(1).map((t, i) => t - stamps[i]!)].map((ms) => ms / 1000);
}
