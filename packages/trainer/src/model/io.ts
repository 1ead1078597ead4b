/**
 * HF LLaMA folders in and out, through @cllama/lora (config.json + single or sharded safetensors;
 * F32/F16/BF16 read as float32; saved as F32 or F16, atomically).
 */
import { HFCheckpoint, saveHFCheckpoint, type SaveDtype } from '@cllama/lora';
import { activeBackend, initBackend, type BackendChoice, type BackendInfo } from '../backend.js';
import { LlamaModel } from './llama.js';

export interface LoadLlamaOptions {
  /** Backend to activate first; by default the one already active, else 'auto'. */
  backend?: BackendChoice;
}

/** Opens an HF LLaMA folder and builds the model, one tensor at a time. */
export async function loadLlama(dir: string, opts: LoadLlamaOptions = {}): Promise<LlamaModel> {
  await ensureBackend(opts.backend);
  const checkpoint = await HFCheckpoint.open(dir);
  try {
    return await LlamaModel.fromCheckpoint(checkpoint);
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

async function ensureBackend(choice: BackendChoice | undefined): Promise<BackendInfo> {
  const current = activeBackend();
  if (current && (choice === undefined || choice === 'auto' || choice === current.name)) return current;
  return initBackend(choice ?? 'auto');
}
