/**
 * The weights of a Hugging Face LlamaForCausalLM, named and shaped from its config alone.
 * Linear weights are stored [out_features, in_features] as in PyTorch.
 */
import type { LlamaConfig } from './llama-config.js';

export interface WeightSpec {
  name: string;
  shape: number[];
  /** A decoder linear layer (what LoRA can target) or lm_head. */
  linear: boolean;
}

/** Every weight tensor of the model, in the order transformers creates them. */
export function llamaWeightSpecs(config: LlamaConfig): WeightSpec[] {
  const h = config.hiddenSize;
  const kv = (config.hiddenSize / config.numAttentionHeads) * config.numKeyValueHeads;
  const inter = config.intermediateSize;
  const specs: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [config.vocabSize, h], linear: false }];
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    specs.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [h, h], linear: true },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, h], linear: true },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, h], linear: true },
      { name: `${p}.self_attn.o_proj.weight`, shape: [h, h], linear: true },
      { name: `${p}.mlp.gate_proj.weight`, shape: [inter, h], linear: true },
      { name: `${p}.mlp.up_proj.weight`, shape: [inter, h], linear: true },
      { name: `${p}.mlp.down_proj.weight`, shape: [h, inter], linear: true },
      { name: `${p}.input_layernorm.weight`, shape: [h], linear: false },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], linear: false },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [h], linear: false });
  // A tied model has no separate lm_head parameter: it reuses embed_tokens.
  if (!config.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [config.vocabSize, h], linear: true });
  return specs;
}
