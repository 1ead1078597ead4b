/**
 * PEFT adapter ↔ model: the one place where the trainer's weight names meet PEFT's tensor keys.
 *
 * The trainer names its variables like the HF model (`model.layers.0.self_attn.q_proj.weight`) and
 * its LoRA branches `<module>.lora_A.weight` / `<module>.lora_B.weight`. A PEFT adapter file stores
 * the same tensors under `base_model.model.<name>`; the keys are built and parsed by @cllama/lora's
 * own helpers (`peftLoraKeys`, `peftFullKey`, `parsePeftKey`), never by string concatenation here.
 *
 * Reading applies an adapter to a loaded model (unmerged); writing collects the trained tensors under
 * PEFT keys for `writePeftAdapter`; restoring puts a checkpoint's adapter back into the variables.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type LoraConfig, parsePeftKey, peftFullKey, peftLoraKeys, readPeftAdapter } from '@cllama/lora';
import { CllamaError } from '@cllama/core';
import type { LlamaModel } from './llama.js';
import type { LoraTensor } from './lora-layers.js';

export class AdapterError extends CllamaError {
  override name = 'AdapterError';
}

const LORA_NAME = /^(.*)\.(lora_A|lora_B)\.weight$/;

/** The PEFT key of a trainer weight name: a LoRA branch (`<module>.lora_A.weight`) or a full weight. */
export function peftKeyOf(name: string): string {
  const lora = LORA_NAME.exec(name);
  if (!lora) return peftFullKey(name);
  const keys = peftLoraKeys(`${lora[1]}.weight`);
  return lora[2] === 'lora_A' ? keys.a : keys.b;
}

/** Whether a PEFT key is a LoRA A/B tensor (rather than a modules_to_save weight). */
export function isLoraKey(key: string): boolean {
  const role = parsePeftKey(key).kind;
  return role === 'lora_A' || role === 'lora_B';
}

/** Copies variables' values out under their PEFT keys (the adapter file's content). */
export function adapterTensors(params: ReadonlyArray<{ name: string; variable: tf.Variable }>): Map<string, LoraTensor> {
  const out = new Map<string, LoraTensor>();
  for (const p of params) out.set(peftKeyOf(p.name), { shape: [...p.variable.shape], data: Float32Array.from(p.variable.dataSync() as Float32Array) });
  return out;
}

/** adapterTensors read asynchronously: works on every backend (webgpu has no synchronous reads). */
export async function readAdapterTensors(params: ReadonlyArray<{ name: string; variable: tf.Variable }>): Promise<Map<string, LoraTensor>> {
  const out = new Map<string, LoraTensor>();
  for (const p of params) out.set(peftKeyOf(p.name), { shape: [...p.variable.shape], data: Float32Array.from((await p.variable.data()) as Float32Array) });
  return out;
}

/** Assigns `data` to a variable after checking the shape; `what` names the tensor in the error. */
export function assignChecked(v: tf.Variable, data: Float32Array, shape: readonly number[], what: string): void {
  if (shape.length !== v.shape.length || shape.some((d, i) => d !== v.shape[i])) {
    throw new AdapterError(`${what} has shape [${shape}], the model expects [${v.shape}] (was it trained with another tokenizer / rank?)`);
  }
  tf.tidy(() => v.assign(tf.tensor(data, [...shape], 'float32')));
}

/** Puts an adapter's tensors back into the variables they came from (every variable must be there). */
export function restoreAdapterTensors(
  params: ReadonlyArray<{ name: string; variable: tf.Variable }>,
  tensors: ReadonlyMap<string, LoraTensor>,
  where: string,
): void {
  for (const p of params) {
    const key = peftKeyOf(p.name);
    const s = tensors.get(key);
    if (!s) throw new AdapterError(`${where}: the adapter has no ${key}`);
    assignChecked(p.variable, s.data, s.shape, `${where}: ${key}`);
  }
}

/** The adapter's LoRA A/B tensors alone (what `LlamaModel.attachLora` takes). */
export function loraTensorsOf(tensors: ReadonlyMap<string, LoraTensor>): Map<string, LoraTensor> {
  return new Map([...tensors].filter(([k]) => isLoraKey(k)));
}

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
