/**
 * LoRA branches for the model's linear layers, with PEFT's semantics and key names:
 *   y = W x + B (A dropout(x)) · alpha / r,   A: [r, in], B: [out, r]
 *   A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), B = 0 (so a fresh adapter changes nothing).
 * Variables are named `<module>.lora_A.weight` / `<module>.lora_B.weight`; in a PEFT adapter file
 * the keys are prefixed with `base_model.model.`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initLoraPair, loraScaling, loraTargets, matchesTargetModule, peftLoraKeys, type LoraConfig } from '@cllama/lora';
import { Mulberry32, mulberry32 } from '@cllama/core';
import { AdapterError, adapterTensors, type LoraTensor } from './peft-keys.js';

/** The parts of a PEFT LoraConfig that shape the LoRA branches. */
export type LoraAttachConfig = Pick<LoraConfig, 'r' | 'loraAlpha' | 'loraDropout' | 'targetModules'> &
  Partial<Pick<LoraConfig, 'targetModulesRegex' | 'useRslora' | 'modulesToSave'>>;

export type { LoraTensor };

export interface LoraAdapter {
  a: tf.Variable;
  b: tf.Variable;
  scaling: number;
  dropout: number;
}

/** A trainable variable holding a copy of `data` (the temporary tensor is released); also used by llama.ts. */
export function newVariable(data: Float32Array, shape: number[], name: string): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  const v = tf.variable(t, true, name);
  t.dispose();
  return v;
}

let loraCounter = 0;

export class LoraLayers {
  readonly adapters = new Map<string, LoraAdapter>();
  /** `<module>.lora_A.weight` → variable. */
  readonly variables = new Map<string, tf.Variable>();
  private dropoutRandom: Mulberry32;

  /**
   * @param linears module name (`model.layers.0.self_attn.q_proj`) → weight shape [out, in]
   * @param tensors a trained adapter under PEFT key names, or undefined for a fresh one
   */
  constructor(
    readonly config: LoraAttachConfig,
    linears: Map<string, [number, number]>,
    tensors: Map<string, LoraTensor> | undefined,
    seed: number,
  ) {
    const { r } = config;
    if (!Number.isInteger(r) || r <= 0) throw new AdapterError(`LoRA rank r must be a positive integer, got ${r}`);
    if (!(config.loraDropout >= 0 && config.loraDropout < 1)) throw new AdapterError(`lora_dropout must be in [0, 1), got ${config.loraDropout}`);
    const id = ++loraCounter;
    const init = mulberry32(seed);
    const targets = loraTargets({ targetModules: config.targetModules, targetModulesRegex: config.targetModulesRegex });
    this.dropoutRandom = Mulberry32.scrambled(seed + 1);
    const used = new Set<string>();
    for (const [module, [out, inFeatures]] of linears) {
      if (!matchesTargetModule(module, targets)) continue;
      const keyA = `${module}.lora_A.weight`;
      const keyB = `${module}.lora_B.weight`;
      let a: Float32Array;
      let b: Float32Array;
      if (tensors) {
        const peft = peftLoraKeys(`${module}.weight`);
        const ta = tensors.get(peft.a);
        const tb = tensors.get(peft.b);
        if (!ta || !tb) throw new AdapterError(`the adapter has no ${peft.a} / lora_B pair although '${module}' matches its target_modules`);
        if (ta.shape[0] !== r || ta.shape[1] !== inFeatures) throw new AdapterError(`${peft.a} is [${ta.shape}], expected [${r}, ${inFeatures}]`);
        if (tb.shape[0] !== out || tb.shape[1] !== r) throw new AdapterError(`${peft.b} is [${tb.shape}], expected [${out}, ${r}]`);
        a = ta.data;
        b = tb.data;
        used.add(peft.a).add(peft.b);
      } else {
        ({ a, b } = initLoraPair(inFeatures, out, r, init));
      }
      const adapter: LoraAdapter = {
        a: newVariable(a, [r, inFeatures], `lora${id}/${keyA}`),
        b: newVariable(b, [out, r], `lora${id}/${keyB}`),
        scaling: loraScaling({ r, loraAlpha: config.loraAlpha, useRslora: config.useRslora }),
        dropout: config.loraDropout,
      };
      this.adapters.set(module, adapter);
      this.variables.set(keyA, adapter.a);
      this.variables.set(keyB, adapter.b);
    }
    if (this.adapters.size === 0) {
      throw new AdapterError(
        `target_modules ${JSON.stringify(config.targetModules)} match no linear layer of this model (names look like model.layers.0.self_attn.q_proj)`,
      );
    }
    if (tensors) {
      for (const key of tensors.keys()) {
        if ((key.includes('.lora_A.') || key.includes('.lora_B.')) && !used.has(key)) {
          throw new AdapterError(`adapter tensor '${key}' does not belong to a targeted layer of this model`);
        }
      }
    }
  }

  get(module: string): LoraAdapter | undefined {
    return this.adapters.get(module);
  }

  /** Restarts the dropout-mask seed stream (a resumed training run reseeds before each micro-batch). */
  reseed(seed: number): void {
    this.dropoutRandom = Mulberry32.scrambled(seed);
  }

  /** A fresh seed for each dropout mask (reproducible across runs with the same seed). */
  nextSeed(): number {
    return this.dropoutRandom.int();
  }

  /** Adapter tensors under PEFT key names (see model/peft-keys.ts). */
  export(): Map<string, LoraTensor> {
    return adapterTensors([...this.variables].map(([name, variable]) => ({ name, variable })));
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
    this.adapters.clear();
  }
}
