/**
 * A decoder layer as one fused kernel (DECODER_LAYER_KERNEL, contract in src/kernel-names.ts), for
 * backends that register it (native). The definition is the op chain in llama.ts (`decoderLayer`): the
 * same inputs, the same LoRA dropout masks (drawn by the kernel from the seeds the chain would give
 * tf.dropout, in projection order), the same value and gradients to float32 rounding.
 *
 * How it is differentiated: tf.customGrad whose inputs are x and the layer's trainable variables (so
 * tf.variableGrads finds them; frozen weights are read, not differentiated) and whose gradient is
 * DECODER_LAYER_GRAD_KERNEL. The forward's masks and saved values are kept for it; under gradient
 * checkpointing only the masks and the layer's input are, and the gradient kernel runs the forward
 * again first.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DECODER_LAYER_GRAD_KERNEL, DECODER_LAYER_KERNEL, hasKernel, type DecoderLayerAttrs, type DecoderLayerGradAttrs } from '../kernel-names.js';

export interface FusedLayerLora {
  /** The projection's name within the layer: q_proj … down_proj. */
  module: string;
  a: tf.Tensor;
  b: tf.Tensor;
  scaling: number;
  /** tf.dropout's seed for this branch's mask (when dropoutRate > 0). */
  seed?: number;
}

export interface FusedLayerArgs {
  x: tf.Tensor;
  cos: tf.Tensor;
  sin: tf.Tensor;
  bias: tf.Tensor;
  /** input_layernorm, post_attention_layernorm, q_proj … down_proj → weight. */
  weights: Record<string, tf.Tensor>;
  lora: FusedLayerLora[];
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  eps: number;
  /** LoRA dropout rate while training; 0 = none. */
  dropoutRate: number;
  /** Gradient checkpointing: keep no activations, recompute them in the backward pass. */
  checkpoint: boolean;
}

/** True when the active backend runs decoder layers as one kernel. */
export function hasFusedDecoderLayer(): boolean {
  return hasKernel(DECODER_LAYER_KERNEL) && hasKernel(DECODER_LAYER_GRAD_KERNEL);
}

const isTapeOn = () => (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();

/** One decoder layer through the fused kernels; differentiable w.r.t. x and the trainable weights. */
export function fusedDecoderLayer(args: FusedLayerArgs): tf.Tensor {
  const { x, cos, sin, bias, lora, dropoutRate, checkpoint } = args;
  const named: Record<string, tf.Tensor> = { x, cos, sin, bias, ...args.weights };
  for (const l of lora) {
    named[`${l.module}.lora_A`] = l.a;
    named[`${l.module}.lora_B`] = l.b;
  }
  const trainable = Object.keys(named).filter((n) => {
    const t = named[n];
    return t instanceof tf.Variable && t.trainable;
  });
  const wanted = ['x', ...trainable];
  const common = {
    hidden: args.hidden,
    intermediate: args.intermediate,
    heads: args.heads,
    kvHeads: args.kvHeads,
    eps: args.eps,
    lora: lora.map((l) => ({ module: l.module, rank: l.a.shape[0]!, scaling: l.scaling })),
    dropoutRate,
  };
  const masks = dropoutRate > 0 ? lora.length : 0;
  const attrs: DecoderLayerAttrs = { ...common, seeds: dropoutRate > 0 ? lora.map((l) => l.seed!) : [], save: isTapeOn() && !checkpoint };
  const layer = tf.customGrad(((...inputs: unknown[]) => {
    const save = inputs.at(-1) as tf.GradSaveFunc;
    const [y, ...rest] = tf.engine().runKernel(DECODER_LAYER_KERNEL, named, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([x, cos, sin, bias, ...rest]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const [kx, kcos, ksin, kbias, ...more] = kept;
        const gradInputs: Record<string, tf.Tensor> = { ...named, x: kx!, cos: kcos!, sin: ksin!, bias: kbias!, dy };
        lora.forEach((l, i) => {
          if (i < masks) gradInputs[`${l.module}.mask`] = more[i]!;
        });
        more.slice(masks).forEach((t, i) => {
          gradInputs[`saved.${i}`] = t;
        });
        const gradAttrs: DecoderLayerGradAttrs = { ...common, recompute: !attrs.save, wanted };
        return tf.engine().runKernel(DECODER_LAYER_GRAD_KERNEL, gradInputs, gradAttrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor;
  return layer(...wanted.map((n) => named[n]!));
}
