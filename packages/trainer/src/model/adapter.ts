/**
 * PEFT adapter folder ↔ model: applying a saved adapter (unmerged) to a loaded LlamaModel, and the
 * tied-embedding rule PEFT follows for modules_to_save. The key mapping and the tensor copies in and
 * out of variables are in peft-keys.ts.
 */
import { type LoraConfig, parsePeftKey, peftFullKey, readPeftAdapter } from '@cllama/lora';
import type { LlamaModel } from './llama.js';
import { assignChecked, type LoraTensor } from './peft-keys.js';

/** Assigns an adapter's saved copies of `weights` (modules_to_save) to the model's variables; absent ones are left as they are. */
export function applySavedWeights(model: LlamaModel, tensors: ReadonlyMap<string, LoraTensor>, weights: readonly string[], where: string): void {
  for (const weight of weights) {
    const key = peftFullKey(weight);
    const saved = tensors.get(key);
    if (saved) assignChecked(model.namedVariables((n) => n === weight).get(weight)!, saved.data, saved.shape, `${where}: ${key}`);
  }
}

/** HF module names whose weights are the word embeddings (what tying shares). */
const EMBEDDING_MODULES = new Set(['embed_tokens', 'lm_head', 'model.embed_tokens']);

/**
 * PEFT on a tied model: `modules_to_save` embed_tokens and/or lm_head each get their own copy of the
 * shared matrix (ModulesToSaveWrapper), trained and saved apart — the module not named keeps the base
 * weight. Untying the model first (lm_head := a copy of embed_tokens) gives exactly that here.
 * `modules`: module names (modules_to_save) or weight names; returns whether the model was untied.
 */
export function untieForSavedEmbeddings(model: LlamaModel, modules: Iterable<string>): boolean {
  if (!model.config.tieWordEmbeddings) return false;
  const names = [...modules].map((m) => m.replace(/\.weight$/, ''));
  if (!names.some((m) => EMBEDDING_MODULES.has(m))) return false;
  model.untieWordEmbeddings();
  return true;
}

/**
 * Reads a PEFT adapter folder and applies it, unmerged: its modules_to_save tensors (embed_tokens,
 * lm_head — grown to the adapter's vocabulary first when it is larger) replace the base weights,
 * and its lora_A/lora_B pairs become LoRA branches. On a tied model, saved embed_tokens / lm_head
 * untie it first, as PEFT applies them (see untieForSavedEmbeddings).
 */
export async function attachLoraFromDir(model: LlamaModel, dir: string, seed = 0): Promise<LoraConfig> {
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
  untieForSavedEmbeddings(
    model,
    full.map((f) => f.name),
  );
  for (const { name, tensor } of full) model.setWeight(name, tensor.data);
  model.attachLora(config, loraTensors, seed);
  return config;
}
