/** Applying a PEFT adapter folder (read by @cllama/lora) to a loaded model. */
import { parsePeftKey, readPeftAdapter } from '@cllama/lora';
import type { LlamaModel } from './llama.js';
import type { LoraTensor } from './lora-layers.js';

/**
 * Reads a PEFT adapter folder and applies it, unmerged: its modules_to_save tensors (embed_tokens,
 * lm_head — grown to the adapter's vocabulary first when it is larger) replace the base weights,
 * and its lora_A/lora_B pairs become LoRA branches.
 */
export async function attachLoraFromDir(model: LlamaModel, dir: string, seed = 0): Promise<void> {
  const { config, tensors } = await readPeftAdapter(dir);
  const loraTensors = new Map<string, LoraTensor>();
  const full: Array<{ name: string; tensor: LoraTensor }> = [];
  for (const [key, tensor] of tensors) {
    const role = parsePeftKey(key);
    if (role.kind === 'full') full.push({ name: role.weightName, tensor });
    else loraTensors.set(key, tensor);
  }
  const vocab = Math.max(model.config.vocabSize, ...full.filter((f) => /embed_tokens|lm_head/.test(f.name)).map((f) => f.tensor.shape[0]!));
  if (vocab !== model.config.vocabSize) model.resizeTokenEmbeddings(vocab, seed);
  for (const { name, tensor } of full) model.setWeight(name, tensor.data);
  model.attachLora(config, loraTensors, seed);
}
