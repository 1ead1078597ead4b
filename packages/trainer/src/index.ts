/**
 * @cllama/trainer — LLaMA in tfjs: HF checkpoints, forward/backward, generation, and the pre-training
 * / SFT training loop. This file is the public API (see README.md); the model's kernels (model/ops.ts),
 * the micro-batch split and the other internals are not exported.
 */
export const PACKAGE_NAME = '@cllama/trainer';

export { TrainerError } from './errors.js';
export { initBackend, activeBackend, describeBackend, webgpuAdapter, BackendError, BACKEND_CHOICES } from './backend.js';
export type { BackendChoice, BackendFacts, BackendInfo, GpuAdapterSummary } from './backend.js';
export { LlamaModel, ModelError, llamaWeightShapes } from './model/llama.js';
export type { WeightTensor, ForwardOptions, LossOptions } from './model/llama.js';
export type { LlamaConfig } from './model/config.js';
export { KVCache } from './model/kv-cache.js';
export { AdapterError } from './model/peft-keys.js';
export type { LoraAttachConfig, LoraTensor } from './model/lora-layers.js';
export { loadLlama, saveLlama } from './model/io.js';
export { attachLoraFromDir } from './model/adapter.js';
export type { LoadLlamaOptions, SaveLlamaOptions } from './model/io.js';
export { resizedEmbeddingRows } from './model/resize.js';
// one decoder layer's forward / backward as ONNX bytes (the native backend's fused layer), for benches that
// run them on other onnxruntime execution providers (bench/gpu-kit's ortgpu part)
export * as decoderLayerOnnx from './layer-graphs.js';
// the label value the loss skips: @cllama/alpaca-data defines the label format
export { IGNORE_INDEX } from '@cllama/alpaca-data';
export { scoreBatches, scoreTokenBlocks, textToBlocks } from './score.js';
export type { ScoreResult } from './score.js';
// training (pre-training stages 1/2, SFT): see docs/trainer.md "Training"
export { AdamW, OptimizerStateError } from './train/adamw.js';
export type { AdamWOptions, AdamWState, OptimizedParameter } from './train/adamw.js';
export { LrSchedule, ScheduleError, SCHEDULER_TYPES, warmupStepsFor } from './train/schedule.js';
export type { SchedulerType, ScheduleOptions } from './train/schedule.js';
export { TrainingCheckpointError, OutputDirNotEmptyError, listCheckpoints, latestCheckpoint, readTrainerState } from './train/checkpoint.js';
export type { TrainerState, LogEntry } from './train/checkpoint.js';
export { readMetrics } from './train/metrics.js';
export { renderTrainingPlot } from './train/plot.js';
export { runTrainingLoop, evaluate, TrainLoopError } from './train/loop.js';
export type { Batch as TrainBatch, BatchSource, LoopModel, LoopHooks, LoopOptions, LoopResult } from './train/loop.js';
export { TrainConfigError, defaultArgs, resolveArgs } from './train/options.js';
export type { TrainArgs, TrainMode } from './train/options.js';
export { dryRunPlan, formatPlan } from './train/plan.js';
export type { DryRunPlan } from './train/plan.js';
export { preparePretrainData, prepareSftData, TrainDataError } from './train/data.js';
export { runTrainingSession, loopModel, TrainSessionError } from './train/session.js';
export { DataParallel, DataParallelError } from './train/data-parallel.js';
export type { DataParallelOptions } from './train/data-parallel.js';
export type { SessionResult } from './train/session.js';
// scale-out: hand a run to torchrun + transformers/peft (cllama-train pretrain|sft --emit-launch)
export { emitLaunchFolder } from './launch/emit.js';
export type { EmitOptions, EmitResult } from './launch/emit.js';
export { LaunchError } from './launch/plan.js';
export type { LaunchJson, FlagMapping } from './launch/plan.js';
