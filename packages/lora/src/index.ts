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
export { FolderExistsError, writeFileAtomic, writeBytesAtomic, writeFolderAtomic } from './atomic-file.js';
