/**
 * The training loop (HF Trainer's inner loop, single device):
 *
 *   for each optimizer step:
 *     for each of gradient_accumulation_steps micro-batches (seeded per-epoch shuffle):
 *       loss, grads ← variableGrads(model.loss(batch))          grads summed
 *     grads ← mean; clip to max_grad_norm; AdamW step at the scheduled lr
 *     log every logging_steps (mean loss since the last log), eval every eval_steps, save every save_steps
 *
 * Everything that decides what happens next — weights, optimizer moments, step, data position, RNG,
 * log history — is in the checkpoint, so a resumed run continues bit for bit like the uninterrupted one.
 * The loop knows nothing about LLaMA: the caller passes the loss function, the trainable variables and
 * how to write / restore weights (see session.ts).
 *
 * Non-finite numbers (HF's Trainer users expect "stop, never save NaN"): the trainable weights are checked
 * at the start, the step's loss and gradient norm before every update (the same numbers whether the
 * gradients came from this thread or the data-parallel workers), and the weights again before every save.
 * Any NaN / ±Inf stops the run with a NonFiniteError before the update or the save, so the checkpoints
 * already written (the last good one) are kept as they are and no non-finite result is ever written.
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, Xoshiro128 } from '@cllama/core';
import { AdamW, defaultDecayFor, type OptimizedParameter } from './adamw.js';
import {
  STATE_FORMAT,
  TRAINER_STATE_FILE,
  checkpointName,
  readOptimizerState,
  readTrainerState,
  writeCheckpoint,
  type LogEntry,
  type RunIdentity,
  type TrainerState,
} from './checkpoint.js';
import type { DataParallel } from './data-parallel.js';
import { GradientAccumulator, clipFactor } from './gradients.js';
import { microBatchGradients, microBatchLoss, type BatchSource } from './micro-batch.js';
import { MetricsLog } from './metrics.js';
import { renderTrainingPlot } from './plot.js';
import { TrainProgress } from './progress.js';
import { writingOutput } from './write-errors.js';
import { LrSchedule } from './schedule.js';
import type { TrainArgs } from './options.js';
import { epochOrder } from './data.js';
import { TrainerError } from '../errors.js';

export type { Batch, BatchSource } from './micro-batch.js';

export interface LoopModel {
  /** Mean causal-LM loss of the batch; differentiable w.r.t. the trainable variables. */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar;
  /** Switch dropout on (training) / off (eval). */
  setTraining(training: boolean): void;
  /** Seeds the dropout masks of the next forward pass (called before every training micro-batch). */
  reseedDropout?(seed: number): void;
}

export interface LoopHooks {
  /** Writes the trainable weights (PEFT adapter or safetensors) into a checkpoint / output folder. */
  writeWeights(dir: string): Promise<void>;
  /** Loads the trainable weights written by writeWeights back into the variables. */
  restoreWeights(dir: string): Promise<void>;
  /** Writes the final result (adapter, or full model + tokenizer) into the output dir. */
  writeFinal(outputDir: string): Promise<void>;
}

/** The training flags the loop reads, as TrainArgs holds them (options.ts documents each one). */
export type LoopArgs = Pick<
  TrainArgs,
  | 'outputDir'
  | 'seed'
  | 'perDeviceTrainBatchSize'
  | 'perDeviceEvalBatchSize'
  | 'gradientAccumulationSteps'
  | 'numTrainEpochs'
  | 'maxSteps'
  | 'learningRate'
  | 'lrSchedulerType'
  | 'warmupRatio'
  | 'warmupSteps'
  | 'weightDecay'
  | 'adamBeta1'
  | 'adamBeta2'
  | 'adamEpsilon'
  | 'maxGradNorm'
  | 'loggingSteps'
  | 'loggingFirstStep'
  | 'evalSteps'
  | 'doEval'
  | 'saveSteps'
  | 'saveTotalLimit'
> &
  Partial<Pick<TrainArgs, 'maxEvalSamples'>>;

export interface LoopOptions extends LoopArgs {
  /** Checkpoint to resume from (already validated by prepareOutputDir). */
  resumeFrom: string | undefined;
  /** Recorded in every checkpoint and compared on resume (LoRA alpha, base model fingerprint). */
  identity?: RunIdentity;
  progress: boolean;
  title?: string;
  /** Worker threads that share every micro-batch (--threads > 1); this thread alone when absent. */
  dataParallel?: DataParallel;
  /** Called after every optimizer step (tests: tensor counts, kill points). */
  onStep?: (info: { step: number; loss: number; numTensors: number }) => void | Promise<void>;
}

export interface LoopResult {
  globalStep: number;
  /** Mean training loss of every optimizer step of this process (resumed runs: from the resume point). */
  stepLosses: Array<{ step: number; loss: number }>;
  logHistory: LogEntry[];
  evalLoss: number | undefined;
  trainSeconds: number;
  tokensPerSecond: number;
}

/** Steps per epoch and in total, as HF Trainer computes them (dataloader length ceil(n / batch)). */
export function plannedSteps(
  numExamples: number,
  o: Pick<LoopOptions, 'perDeviceTrainBatchSize' | 'gradientAccumulationSteps' | 'numTrainEpochs' | 'maxSteps'>,
) {
  const microBatchesPerEpoch = Math.ceil(numExamples / o.perDeviceTrainBatchSize);
  const updatesPerEpoch = Math.max(Math.floor(microBatchesPerEpoch / o.gradientAccumulationSteps), 1);
  const maxSteps = o.maxSteps > 0 ? o.maxSteps : Math.ceil(o.numTrainEpochs * updatesPerEpoch);
  return { microBatchesPerEpoch, updatesPerEpoch, maxSteps };
}

export class TrainLoopError extends TrainerError {
  override name = 'TrainLoopError';
}

/** A NaN / ±Inf loss, gradient norm or weight: the run stops, nothing non-finite is saved. */
export class NonFiniteError extends TrainLoopError {
  override name = 'NonFiniteError';
}

/**
 * The first trainable weight holding a NaN or ±Inf, checked on the backend (one number per weight comes
 * back): Σ 0·w is 0 exactly when every w is finite (0·±Inf and 0·NaN are NaN), with kernels every backend has.
 */
export async function firstNonFiniteParam(params: ReadonlyArray<{ name: string; variable: tf.Variable }>): Promise<string | undefined> {
  for (const p of params) {
    const sum = tf.tidy(() => tf.sum(tf.mul(p.variable, tf.scalar(0))));
    const probe = (await sum.data())[0]; // an async read: webgpu has no synchronous one
    sum.dispose();
    if (probe !== 0) return p.name;
  }
  return undefined;
}

export async function evaluate(
  model: LoopModel,
  data: BatchSource,
  batchSize: number,
  maxSamples?: number,
  parallel?: DataParallel,
): Promise<{ loss: number; perplexity: number }> {
  model.setTraining(false);
  const n = Math.min(data.length, maxSamples ?? Infinity);
  if (n === 0) throw new TrainLoopError('the evaluation set is empty; lower --validation-split-percentage only if you also drop --do-eval, or give more data');
  let sum = 0;
  let batches = 0;
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const b = data.batch(idx);
    sum += parallel ? await parallel.loss(model, b) : await microBatchLoss(model, b);
    batches += 1;
  }
  model.setTraining(true);
  const loss = sum / batches;
  return { loss, perplexity: Math.exp(loss) };
}

export async function runTrainingLoop(
  model: LoopModel,
  params: Array<{ name: string; variable: tf.Variable }>,
  train: BatchSource,
  evalData: BatchSource | undefined,
  hooks: LoopHooks,
  o: LoopOptions,
): Promise<LoopResult> {
  if (train.length === 0) throw new TrainLoopError('the training set is empty: check --dataset-dir (and --block-size: a block needs that many tokens)');
  if (params.length === 0) throw new TrainLoopError('nothing to train: no trainable variables were selected');
  const run = await LoopRun.start(model, params, train, evalData, hooks, o);
  try {
    if (o.doEval && evalData && run.state.globalStep === 0) {
      // the starting point, so the log shows how far training moved the eval loss
      await run.evaluateAndRecord(evalData);
    }
    while (run.state.globalStep < run.maxSteps) await run.step();
    return await run.finish();
  } finally {
    run.dispose();
  }
}

/**
 * One run of the loop: what it holds between steps (optimizer, schedule, trainer state, RNG, running
 * log sums) and what it does — one optimizer step, a checkpoint, a log line, the final result.
 * runTrainingLoop drives it; the order of operations is the header's.
 */
class LoopRun {
  private readonly rng: Xoshiro128;
  private readonly progress: TrainProgress;
  private readonly accumulator = new GradientAccumulator();
  private readonly stepLosses: LoopResult['stepLosses'] = [];
  private readonly evalEvery: number;
  private order: Uint32Array;
  private lossSinceLog = 0;
  private stepsSinceLog = 0;
  private evalLoss: number | undefined;
  private tokensThisRun = 0;
  private readonly started = Date.now();
  private readonly baseSeconds: number;

  private constructor(
    private readonly model: LoopModel,
    private readonly params: Array<{ name: string; variable: tf.Variable }>,
    private readonly train: BatchSource,
    private readonly evalData: BatchSource | undefined,
    private readonly hooks: LoopHooks,
    private readonly o: LoopOptions,
    readonly maxSteps: number,
    private readonly microBatchesPerEpoch: number,
    private readonly schedule: LrSchedule,
    private readonly optimizer: AdamW,
    private readonly metrics: MetricsLog,
    readonly state: TrainerState,
    /** The step of the last checkpoint this run wrote or resumed from (0: none). */
    private savedStep: number,
  ) {
    this.rng = Xoshiro128.fromState(state.rng);
    this.progress = new TrainProgress(maxSteps, state.globalStep, o.progress);
    this.evalEvery = o.evalSteps ?? o.loggingSteps;
    this.order = epochOrder(o.seed, state.data.epoch, train.length);
    this.baseSeconds = state.trainSeconds;
  }

  /** The run's plan, optimizer and state — restored from `o.resumeFrom` when given — with the starting weights checked. */
  static async start(...[model, params, train, evalData, hooks, o]: Parameters<typeof runTrainingLoop>): Promise<LoopRun> {
    const { microBatchesPerEpoch, maxSteps } = plannedSteps(train.length, o);
    const schedule = new LrSchedule({
      type: o.lrSchedulerType,
      baseLr: o.learningRate,
      totalSteps: maxSteps,
      warmupRatio: o.warmupRatio,
      warmupSteps: o.warmupSteps,
    });
    const optimized: OptimizedParameter[] = params.map((p) => ({ ...p, weightDecay: defaultDecayFor(p.name, o.weightDecay) }));
    const optimizer = new AdamW(optimized, { betas: [o.adamBeta1, o.adamBeta2], eps: o.adamEpsilon, weightDecay: o.weightDecay });
    const metrics = new MetricsLog(o.outputDir);

    let state: TrainerState = {
      format: STATE_FORMAT,
      globalStep: 0,
      maxSteps,
      epoch: 0,
      data: { epoch: 0, microBatch: 0, seed: o.seed, numMicroBatchesPerEpoch: microBatchesPerEpoch },
      rng: Xoshiro128.fromSeed(o.seed, 0x5eed).state(),
      scheduler: { type: o.lrSchedulerType, baseLr: o.learningRate, totalSteps: maxSteps, warmupSteps: schedule.warmupSteps },
      trainedTokens: 0,
      trainSeconds: 0,
      trainable: params.map((p) => p.name),
      logHistory: [],
      ...(o.identity ? { identity: o.identity } : {}),
    };
    if (o.resumeFrom) {
      const saved = await readTrainerState(o.resumeFrom);
      const mismatch = saved.trainable.join(',') !== state.trainable.join(',');
      if (mismatch)
        throw new TrainLoopError(
          `${o.resumeFrom} was written for other trainable weights (${saved.trainable.length} tensors, e.g. ${saved.trainable[0]}); resume with the same --stage / LoRA flags, or start over with --overwrite-output-dir`,
        );
      if (saved.data.numMicroBatchesPerEpoch !== microBatchesPerEpoch || saved.data.seed !== o.seed) {
        throw new TrainLoopError(
          `${o.resumeFrom} was written for another data set or seed (${saved.data.numMicroBatchesPerEpoch} micro-batches per epoch, seed ${saved.data.seed}; now ${microBatchesPerEpoch}, seed ${o.seed}); resume with the same data and --seed`,
        );
      }
      checkIdentity(o.resumeFrom, saved.identity, o.identity);
      await hooks.restoreWeights(o.resumeFrom);
      optimizer.loadState(await readOptimizerState(o.resumeFrom));
      state = { ...saved, maxSteps, scheduler: state.scheduler, ...(o.identity ? { identity: o.identity } : {}) };
    }
    const bad = await firstNonFiniteParam(params);
    if (bad) {
      throw new NonFiniteError(
        `the starting weight '${bad}' holds NaN or Inf (${o.resumeFrom ? `checkpoint ${o.resumeFrom}` : 'the model or --peft-path adapter'} is broken); nothing was trained or saved`,
      );
    }
    const savedStep = o.resumeFrom ? state.globalStep : 0;
    const lastGood = LoopRun.lastGoodText(o.outputDir, savedStep);
    await writingOutput(metrics.file, afterFailureText(lastGood, savedStep), () => metrics.reset(state.logHistory));
    const run = new LoopRun(model, params, train, evalData, hooks, o, maxSteps, microBatchesPerEpoch, schedule, optimizer, metrics, state, savedStep);
    model.setTraining(true);
    return run;
  }

  private static lastGoodText(outputDir: string, savedStep: number): string {
    return savedStep > 0 ? `the last good checkpoint, ${path.join(outputDir, `checkpoint-${savedStep}`)}, is kept` : 'no checkpoint was saved';
  }

  private lastGood(): string {
    return LoopRun.lastGoodText(this.o.outputDir, this.savedStep);
  }

  /** What a failed write leaves and what to do (the last good checkpoint is kept). */
  private afterFailure(): string {
    return afterFailureText(this.lastGood(), this.savedStep);
  }

  private async assertFiniteWeights(what: string): Promise<void> {
    const name = await firstNonFiniteParam(this.params);
    if (name) {
      throw new NonFiniteError(
        `after step ${this.state.globalStep} the weight '${name}' holds NaN or Inf (lower --learning-rate, now ${this.o.learningRate}); refusing to save ${what}; ${this.lastGood()}`,
      );
    }
  }

  /** A checkpoint of the current step (never of non-finite weights), and the plot. */
  private async saveAll(): Promise<void> {
    const { o, state } = this;
    await this.assertFiniteWeights(`checkpoint-${state.globalStep}`);
    state.trainSeconds = this.baseSeconds + (Date.now() - this.started) / 1000;
    state.rng = this.rng.state();
    const exported = await this.optimizer.exportState();
    await writingOutput(path.join(o.outputDir, checkpointName(state.globalStep)), this.afterFailure(), () =>
      writeCheckpoint(o.outputDir, { state, optimizer: exported, writeWeights: this.hooks.writeWeights }, o.saveTotalLimit),
    );
    this.savedStep = state.globalStep;
    await writePlot(o.outputDir, state, this.afterFailure(), o.title);
  }

  /** A log entry: into the state's history, metrics.jsonl and the progress line. */
  private async record(entry: LogEntry): Promise<void> {
    this.state.logHistory.push(entry);
    await writingOutput(this.metrics.file, this.afterFailure(), () => this.metrics.append(entry));
    this.progress.log(
      Object.entries(entry)
        .map(([k, v]) => `${k}=${formatMetric(v)}`)
        .join(' '),
    );
  }

  /** Evaluates at the current step, logs eval_loss / eval_perplexity, returns the loss. */
  async evaluateAndRecord(data: BatchSource): Promise<number> {
    const { o, state } = this;
    const ev = await evaluate(this.model, data, o.perDeviceEvalBatchSize, o.maxEvalSamples, o.dataParallel);
    await this.record({ step: state.globalStep, epoch: round(state.epoch, 4), eval_loss: round(ev.loss, 6), eval_perplexity: round(ev.perplexity, 4) });
    return ev.loss;
  }

  /** The gradient_accumulation_steps micro-batches of one step, their gradients summed; returns the mean loss. */
  private async accumulate(): Promise<number> {
    const { o, state } = this;
    let stepLoss = 0;
    for (let k = 0; k < o.gradientAccumulationSteps; k++) {
      if (state.data.microBatch >= this.microBatchesPerEpoch) {
        state.data.epoch += 1;
        state.data.microBatch = 0;
        this.order = epochOrder(o.seed, state.data.epoch, this.train.length);
      }
      const start = state.data.microBatch * o.perDeviceTrainBatchSize;
      const b = this.train.batch(this.order.subarray(start, Math.min(start + o.perDeviceTrainBatchSize, this.train.length)));
      const dropoutSeed = this.rng.nextUint32() & 0x7fffffff;
      let micro: { loss: number; grads: Map<string, tf.Tensor> };
      if (o.dataParallel) {
        micro = await o.dataParallel.lossAndGrads(this.model, b, dropoutSeed);
      } else {
        this.model.reseedDropout?.(dropoutSeed);
        micro = await microBatchGradients(this.model, this.params, b);
      }
      this.accumulator.add(micro.grads);
      stepLoss += micro.loss;
      state.data.microBatch += 1;
      state.trainedTokens += b.batch * b.seqLen;
      this.tokensThisRun += b.batch * b.seqLen;
    }
    return stepLoss / o.gradientAccumulationSteps;
  }

  /** One optimizer step: accumulate, clip, refuse non-finite numbers, update; then log, evaluate and save when due. */
  async step(): Promise<void> {
    const { o, state } = this;
    const stepLoss = await this.accumulate();
    const grads = this.accumulator.takeMean();
    const { norm, factor } = await clipFactor(grads, o.maxGradNorm);
    if (!Number.isFinite(stepLoss) || !Number.isFinite(norm)) {
      for (const g of grads.values()) g.dispose();
      throw new NonFiniteError(
        `step ${state.globalStep + 1}: the training loss is ${stepLoss} and the gradient norm ${norm} ` +
          `(NaN/Inf in the base model or adapter, or --learning-rate ${o.learningRate} too high); stopped before the update; ${this.lastGood()}`,
      );
    }
    const lr = this.schedule.lrAt(state.globalStep);
    this.optimizer.step(grads, lr, factor); // the clipping, applied as AdamW reads each gradient
    for (const g of grads.values()) g.dispose();
    state.globalStep += 1;
    state.epoch = (state.data.epoch * this.microBatchesPerEpoch + state.data.microBatch) / this.microBatchesPerEpoch;
    this.stepLosses.push({ step: state.globalStep, loss: stepLoss });
    this.lossSinceLog += stepLoss;
    this.stepsSinceLog += 1;
    const seconds = (Date.now() - this.started) / 1000;
    const tps = this.tokensThisRun / Math.max(seconds, 1e-9);
    this.progress.update(state.globalStep, { loss: stepLoss, lr: this.schedule.lrAt(state.globalStep), tokensPerSecond: tps });

    if (state.globalStep % o.loggingSteps === 0 || (o.loggingFirstStep && state.globalStep === 1)) {
      // HF logs the mean loss since the last log and the lr the scheduler holds after the step
      await this.record({
        step: state.globalStep,
        epoch: round(state.epoch, 4),
        loss: round(this.lossSinceLog / this.stepsSinceLog, 6),
        learning_rate: this.schedule.lrAt(state.globalStep),
        grad_norm: round(norm, 6),
        tokens_per_second: round(tps, 1),
      });
      this.lossSinceLog = 0;
      this.stepsSinceLog = 0;
    }
    if (o.doEval && this.evalData && state.globalStep % this.evalEvery === 0) this.evalLoss = await this.evaluateAndRecord(this.evalData);
    if (state.globalStep % o.saveSteps === 0 && state.globalStep < this.maxSteps) await this.saveAll();
    await o.onStep?.({ step: state.globalStep, loss: stepLoss, numTensors: tf.memory().numTensors });
  }

  /** After the last step: the closing evaluation, the last checkpoint, the final result, trainer_state.json, all_results.json, the plot. */
  async finish(): Promise<LoopResult> {
    const { o, state } = this;
    if (o.doEval && this.evalData && (this.evalLoss === undefined || state.globalStep % this.evalEvery !== 0))
      this.evalLoss = await this.evaluateAndRecord(this.evalData);
    // the last step is always checkpointed (HF saves at the end too), then the final result
    await this.saveAll();
    await this.assertFiniteWeights('the final result');
    const final = `${this.afterFailure()}, which writes the final result`;
    await writingOutput(o.outputDir, final, () => this.hooks.writeFinal(o.outputDir));
    state.trainSeconds = this.baseSeconds + (Date.now() - this.started) / 1000;
    const stateFile = path.join(o.outputDir, TRAINER_STATE_FILE);
    await writingOutput(stateFile, final, () => writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`));
    const seconds = (Date.now() - this.started) / 1000;
    const evalLoss = this.evalLoss;
    const results = {
      train_steps: state.globalStep,
      train_runtime: round(state.trainSeconds, 3),
      train_tokens: state.trainedTokens,
      tokens_per_second: round(this.tokensThisRun / Math.max(seconds, 1e-9), 2),
      ...(evalLoss !== undefined ? { eval_loss: evalLoss, perplexity: Math.exp(evalLoss) } : {}),
    };
    const resultsFile = path.join(o.outputDir, 'all_results.json');
    await writingOutput(resultsFile, final, () => writeFileAtomic(resultsFile, `${JSON.stringify(results, null, 2)}\n`));
    await writePlot(o.outputDir, state, final, o.title);
    return {
      globalStep: state.globalStep,
      stepLosses: this.stepLosses,
      logHistory: state.logHistory,
      evalLoss,
      trainSeconds: state.trainSeconds,
      tokensPerSecond: this.tokensThisRun / Math.max(seconds, 1e-9),
    };
  }

  dispose(): void {
    this.progress.stop();
    this.accumulator.dispose();
    this.optimizer.dispose();
  }
}

function afterFailureText(lastGood: string, savedStep: number): string {
  return `${lastGood}: free space and run the same command again${savedStep > 0 ? ' to resume from it' : ''}`;
}

/**
 * Refuses a resume whose LoRA alpha or base model differs from what the checkpoint recorded (a field
 * either side lacks — a checkpoint of an older version — is not compared).
 */
export function checkIdentity(checkpoint: string, saved: RunIdentity | undefined, now: RunIdentity | undefined): void {
  if (saved?.loraAlpha !== undefined && now?.loraAlpha !== undefined && saved.loraAlpha !== now.loraAlpha) {
    throw new TrainLoopError(
      `${checkpoint} was trained with --lora-alpha ${saved.loraAlpha}, not ${now.loraAlpha} (the adapter's scale alpha/r would change under its weights); resume with --lora-alpha ${saved.loraAlpha}, or start over with --overwrite-output-dir`,
    );
  }
  const a = saved?.baseModel;
  const b = now?.baseModel;
  if (a && b && a.fingerprint !== b.fingerprint) {
    throw new TrainLoopError(
      `${checkpoint} was trained on another base model (${a.path}, fingerprint ${a.fingerprint}; --model-name-or-path ${b.path} has ${b.fingerprint}); resume with the same base model, or start over with --overwrite-output-dir`,
    );
  }
}

async function writePlot(outputDir: string, state: TrainerState, afterFailure: string, title?: string): Promise<void> {
  const file = path.join(outputDir, 'training_plot.svg');
  await writingOutput(file, afterFailure, async () => {
    await fs.mkdir(outputDir, { recursive: true });
    await writeFileAtomic(file, renderTrainingPlot(state.logHistory, { title, maxSteps: state.maxSteps }));
  });
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

function formatMetric(v: number): string {
  return Math.abs(v) > 0 && Math.abs(v) < 1e-3 ? v.toExponential(3) : String(v);
}
