/** @cllama/lora — Safetensors, Hugging Face checkpoint folders, PEFT-compatible LoRA adapters and adapter merging. */
export const PACKAGE_NAME = '@cllama/lora';

export {
  SafetensorsError,
  SafetensorsFile,
  SafetensorsStreamWriter,
  SAFETENSORS_DTYPE_SIZES,
  LOADABLE_DTYPES,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  writeSafetensors,
  encodeSafetensorsHeader,
  encodeTensorData,
  decodeTensorBytes,
  shapeSize,
} from './safetensors.js';
export type { SafetensorsDtype, SafetensorsHeader, SafetensorsTensorInfo, NamedTensor, SaveDtype } from './safetensors.js';
export { halfBitsToFloat, floatToHalfBits, decodeF16, decodeBF16, encodeF16 } from './half-float.js';
export {
  LlamaConfigError,
  parseLlamaConfig,
  readLlamaConfig,
  llamaConfigToJson,
  serializeLlamaConfig,
  writeLlamaConfig,
  createLlamaConfig,
  headDim,
} from './llama-config.js';
export type { LlamaConfig } from './llama-config.js';
export {
  CheckpointError,
  HFCheckpoint,
  saveHFCheckpoint,
  shardFileName,
  SINGLE_FILE_NAME,
  INDEX_FILE_NAME,
} from './hf-checkpoint.js';
export type { SaveHFCheckpointOptions } from './hf-checkpoint.js';
export {
  PeftError,
  PeftAdapter,
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  PEFT_KEY_PREFIX,
  parseLoraConfig,
  loraConfigToJson,
  loraScaling,
  loraTargets,
  parsePeftKey,
  peftLoraKeys,
  peftFullKey,
  readPeftAdapter,
  writePeftAdapter,
} from './peft.js';
export type { LoraConfig, LoraPairInfo, PeftKeyRole } from './peft.js';
export { matchesTargetModule, matchesModulesToSave, moduleNameOf, isLinearModule } from './lora-target.js';
export { initLoraPair, loraDelta, mergeLora, unmergeLora, resizeRows } from './lora-math.js';
export type { LoraPair } from './lora-math.js';
export { llamaWeightSpecs } from './llama-weights.js';
export type { WeightSpec } from './llama-weights.js';
export { countTrainableParameters } from './trainable-params.js';
export type { TrainingPlan, ParameterCount } from './trainable-params.js';
export { mergeAdaptersIntoCheckpoint, applyAdaptersToWeight, MergeError, TOKENIZER_FILES } from './merge.js';
export type { MergeOptions, MergeReport } from './merge.js';
