/**
 * HF LLaMA folders in and out, through @cllama/lora (config.json + single or sharded safetensors;
 * F32/F16/BF16 read as float32; saved as F32 or F16, atomically).
 *
 * Loading does not choose a backend: the caller does, once (initBackend), and the model is built on
 * the active one with its facts (or the facts given).
 */
import { HFCheckpoint, saveHFCheckpoint, type SaveDtype } from '@cllama/lora';
import { activeBackend } from '../backend.js';
import type { BackendFacts } from '../backends/facts.js';
import { LlamaModel, ModelError } from './llama.js';

export interface LoadLlamaOptions {
  /** The facts of the backend the model runs on (default: the active backend's). */
  facts?: BackendFacts;
}

/** Opens an HF LLaMA folder and builds the model, one tensor at a time, on the backend initBackend chose. */
export async function loadLlama(dir: string, opts: LoadLlamaOptions = {}): Promise<LlamaModel> {
  if (!activeBackend()) throw new ModelError(`loading ${dir}: no backend chosen yet; call initBackend() (e.g. initBackend('auto')) first`);
  const checkpoint = await HFCheckpoint.open(dir);
  try {
    return await LlamaModel.fromCheckpoint(checkpoint, opts.facts);
  } finally {
    await checkpoint.close();
  }
}

export interface SaveLlamaOptions {
  dtype?: SaveDtype;
  /** Start a new shard past this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Replace an existing folder (default: refuse). */
  force?: boolean;
}

/** Writes the model's base weights (LoRA not merged) as an HF folder, atomically. */
export async function saveLlama(dir: string, model: LlamaModel, opts: SaveLlamaOptions = {}): Promise<void> {
  const names = [...model.namedVariables((n) => !n.includes('.lora_')).keys()];
  async function* tensors() {
    for (const name of names) yield await model.readWeight(name);
  }
  await saveHFCheckpoint(dir, model.config, tensors(), opts);
}
