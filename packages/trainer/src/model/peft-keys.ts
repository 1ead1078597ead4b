/**
 * Trainer weight names ↔ PEFT adapter keys, and adapter tensors in and out of variables.
 *
 * The trainer names its variables like the HF model (`model.layers.0.self_attn.q_proj.weight`) and
 * its LoRA branches `<module>.lora_A.weight` / `<module>.lora_B.weight`. A PEFT adapter file stores
 * the same tensors under `base_model.model.<name>`; the keys are built and parsed by @cllama/lora's
 * own helpers (`peftLoraKeys`, `peftFullKey`, `parsePeftKey`), never by string concatenation here.
 * Nothing here knows the model (model/adapter.ts applies an adapter folder to a LlamaModel), so the
 * LoRA layers (lora-layers.ts) can export their tensors through it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parsePeftKey, peftFullKey, peftLoraKeys } from '@cllama/lora';
import { TrainerError } from '../errors.js';

export class AdapterError extends TrainerError {
  override name = 'AdapterError';
}

/** One adapter tensor as plain data (PEFT layout). */
export interface LoraTensor {
  shape: number[];
  data: Float32Array;
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
