/** @cllama/trainer — LLaMA in tfjs: HF checkpoints, forward/backward, generation, and the pre-training / SFT training loop. */
export const PACKAGE_NAME = '@cllama/trainer';

export { initBackend, activeBackend, BackendError, BACKEND_CHOICES } from './backend.js';
export type { BackendChoice, BackendInfo } from './backend.js';
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
  rmsNorm,
  rotaryTables,
  applyRotary,
  scatterAddRows,
} from './model/ops.js';
export { SeededRandom } from './model/random.js';
export { scoreBatches, scoreTokenBlocks, textToBlocks } from './score.js';
export type { ScoreResult } from './score.js';
