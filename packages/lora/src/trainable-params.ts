/**
 * Trainable-parameter accounting in the manner of PEFT's print_trainable_parameters, from config.json
 * alone (no weights loaded).
 *
 * How modules_to_save are counted: PEFT wraps such a module in a ModulesToSaveWrapper that keeps the
 * frozen original AND a trainable copy, so `model.named_parameters()` sees both and PEFT prints
 *   trainable / (base + LoRA + copies).
 * Chinese-LLaMA-Alpaca's published shares (2.97 %, 6.06 %, 6.22 % on LLaMA-7B) are instead
 *   trainable / (base + LoRA)
 * i.e. the trained embeddings counted once, as part of the model. That is the default here
 * (`countModulesToSaveCopies: false`); pass true to get the figure PEFT itself prints.
 */
import type { LlamaConfig } from './llama-config.js';
import { llamaWeightSpecs } from './llama-weights.js';
import { matchesModulesToSave, matchesTargetModule } from './lora-target.js';

export interface TrainingPlan {
  /** LoRA on the matched linear layers. */
  lora?: { r: number; targetModules: readonly string[] | string };
  /** Modules trained in full through PEFT's modules_to_save (e.g. ['embed_tokens', 'lm_head']). */
  modulesToSave?: readonly string[];
  /** Modules trained in full in place, without PEFT (stage 1: ['embed_tokens'] with everything else frozen). */
  trainInPlace?: readonly string[];
  /** Count modules_to_save's frozen originals in the total like PEFT's printout (default false, see above). */
  countModulesToSaveCopies?: boolean;
}

export interface ParameterCount {
  trainable: number;
  total: number;
  /** 100 · trainable / total. */
  percent: number;
  /** The line PEFT prints. */
  summary: string;
}

export function countTrainableParameters(config: LlamaConfig, plan: TrainingPlan): ParameterCount {
  let base = 0;
  let loraParams = 0;
  let fullTrainable = 0;
  let copies = 0;
  for (const w of llamaWeightSpecs(config)) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    base += size;
    if (plan.modulesToSave && matchesModulesToSave(w.name, plan.modulesToSave)) {
      fullTrainable += size;
      copies += size;
      continue; // a saved module is trained whole; PEFT does not put LoRA inside it
    }
    if (plan.trainInPlace && matchesModulesToSave(w.name, plan.trainInPlace)) {
      fullTrainable += size;
      continue;
    }
    if (plan.lora && w.linear && matchesTargetModule(w.name, plan.lora.targetModules)) {
      const [out, inFeatures] = w.shape;
      loraParams += plan.lora.r * (inFeatures + out); // A [r, in] + B [out, r]
    }
  }
  const trainable = loraParams + fullTrainable;
  const total = base + loraParams + (plan.countModulesToSaveCopies ? copies : 0);
  const percent = (100 * trainable) / total;
  return {
    trainable,
    total,
    percent,
    summary: `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${percent.toFixed(4)}`,
  };
}
