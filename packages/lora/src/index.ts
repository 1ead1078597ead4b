/**
 * @cllama/lora — Safetensors, Hugging Face checkpoint folders, PEFT-compatible LoRA adapters and
 * adapter merging. This file is the public API (see README.md); everything else is internal.
 */
export const PACKAGE_NAME = '@cllama/lora';

export { LoraError } from './errors.js';

export { SafetensorsError, SafetensorsFile, SafetensorsStreamWriter, readSafetensorsHeader, writeSafetensors } from './safetensors.js';
export type { SafetensorsDtype, SafetensorsHeader, SafetensorsTensorInfo, NamedTensor, SaveDtype } from './safetensors.js';
export { LlamaConfigError, parseLlamaConfig, readLlamaConfig, writeLlamaConfig, createLlamaConfig, headDim } from './llama-config.js';
export type { LlamaConfig } from './llama-config.js';
export { CheckpointError, HFCheckpoint, saveHFCheckpoint, SINGLE_FILE_NAME, INDEX_FILE_NAME } from './hf-checkpoint.js';
export type { SaveHFCheckpointOptions } from './hf-checkpoint.js';
export {
  PeftError,
  PeftAdapter,
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  PEFT_KEY_PREFIX,
  parseLoraConfig,
  loraScaling,
  loraTargets,
  parsePeftKey,
  peftLoraKeys,
  peftFullKey,
  readPeftAdapter,
  writePeftAdapter,
} from './peft.js';
export type { LoraConfig, LoraPairInfo, PeftKeyRole } from './peft.js';
export { matchesTargetModule, matchesModulesToSave } from './lora-target.js';
export { initLoraPair, mergeLora, unmergeLora } from './lora-math.js';
export type { LoraPair } from './lora-math.js';
export { countTrainableParameters } from './trainable-params.js';
export type { TrainingPlan, ParameterCount } from './trainable-params.js';
export { mergeAdaptersIntoCheckpoint, MergeError, TOKENIZER_FILES } from './merge.js';
export type { MergeOptions, MergeReport } from './merge.js';
