/** Applying a PEFT adapter folder to a loaded model. */
import type { LlamaModel } from './llama.js';

/** Reads a PEFT adapter folder (via @cllama/lora) and attaches it, unmerged, to the model. */
export async function attachLoraFromDir(model: LlamaModel, dir: string): Promise<void> {
  const lora = (await import('@cllama/lora')) as Record<string, unknown>;
  const read = lora.readPeftAdapter as
    | ((d: string) => Promise<{ config: { r: number; loraAlpha: number; loraDropout: number; targetModules: string[] }; tensors: Map<string, { shape: number[]; data: Float32Array }> }>)
    | undefined;
  if (!read) throw new Error('this build of @cllama/lora cannot read PEFT adapters yet (readPeftAdapter missing)');
  const { config, tensors } = await read(dir);
  model.attachLora(config, tensors);
}
