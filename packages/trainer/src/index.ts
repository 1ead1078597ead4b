/** @cllama/trainer — LLaMA in tfjs: HF checkpoints, forward/backward, generation, and the pre-training / SFT training loop. */
export const PACKAGE_NAME = '@cllama/trainer';

export { initBackend, activeBackend, describeBackend, webgpuAdapter, canReadSync, BackendError, BACKEND_CHOICES } from './backend.js';
export type { BackendChoice, BackendInfo, GpuAdapterSummary } from './backend.js';
export { LlamaModel, ModelError, llamaWeightShapes, PROJECTIONS } from './model/llama.js';
export type { WeightTensor, ForwardOptions, LossOptions } from './model/llama.js';
export type { LlamaConfig } from './model/config.js';
export { KVCache } from './model/kv-cache.js';
export { LoraError, PEFT_PREFIX } from './model/lora-layers.js';
export type { LoraAttachConfig, LoraTensor } from './model/lora-layers.js';
export { loadLlama, saveLlama } from './model/io.js';
export type { LoadLlamaOptions, SaveLlamaOptions } from './model/io.js';
export { resizedEmbeddingRows, MEAN_RESIZING_EPSILON } from './model/resize.js';
export {
  IGNORE_INDEX,
  matMul,
  linear,
  embeddingLookup,
  fusedLinearCrossEntropy,
  referenceLinearCrossEntropy,
  attention,
  releaseHeadBlocks,
  WASM_HEAD_BLOCK_ROWS,
  rmsNorm,
  rotaryTables,
  applyRotary,
  scatterAddRows,
} from './model/ops.js';
export { SeededRandom } from './model/random.js';
export { scoreBatches, scoreTokenBlocks, textToBlocks } from './score.js';
export type { ScoreResult } from './score.js';
// training (pre-training stages 1/2, SFT): see docs/trainer.md "Training"
export { AdamW, OptimizerStateError, defaultDecayFor } from './train/adamw.js';
export type { AdamWOptions, AdamWState, OptimizedParameter } from './train/adamw.js';
export { LrSchedule, ScheduleError, SCHEDULER_TYPES, warmupStepsFor } from './train/schedule.js';
export type { SchedulerType, ScheduleOptions } from './train/schedule.js';
export { GradientAccumulator, clipByGlobalNorm, globalNorm } from './train/gradients.js';
export { Rng, epochOrder } from './train/rng.js';
export type { RngState } from './train/rng.js';
export { CheckpointError, OutputDirNotEmptyError, listCheckpoints, latestCheckpoint, prepareOutputDir, readTrainerState, readOptimizerState, writeCheckpoint } from './train/checkpoint.js';
export type { TrainerState, LogEntry } from './train/checkpoint.js';
export { MetricsLog, readMetrics } from './train/metrics.js';
export { renderTrainingPlot } from './train/plot.js';
export { runTrainingLoop, evaluate, plannedSteps, TrainLoopError } from './train/loop.js';
export type { Batch as TrainBatch, BatchSource, LoopModel, LoopHooks, LoopOptions, LoopResult } from './train/loop.js';
export { TrainConfigError, addTrainOptions, defaultArgs, resolveArgs, trainablePlan } from './train/options.js';
export type { TrainArgs, TrainMode, TrainablePlan } from './train/options.js';
export { dryRunPlan, formatPlan } from './train/plan.js';
export type { DryRunPlan } from './train/plan.js';
export { preparePretrainData, prepareSftData, splitIndices, TrainDataError } from './train/data.js';
export { runTrainingSession, setUpModel, TrainSessionError } from './train/session.js';
export { DataParallel, DataParallelError } from './train/data-parallel.js';
export type { DataParallelOptions } from './train/data-parallel.js';
export { countedTargets, splitBatch } from './train/micro-batch.js';
export type { Shard } from './train/micro-batch.js';
export type { SessionResult } from './train/session.js';
