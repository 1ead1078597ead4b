/**
 * --dry-run: what a run would do, from config.json (and the tokenizer's size) alone — no weights are
 * loaded. Trainable parameters come from @cllama/lora's accounting (PEFT's print_trainable_parameters
 * convention: the total counts the base model at the tokenizer's vocabulary plus the LoRA weights),
 * extrapolated from one and two layers (memory.ts countParameters: a config claiming millions of layers
 * costs nothing).
 *
 * Memory estimate (float32 everywhere, as this trainer runs):
 *   weights 4·P_total + gradients 4·P_trainable + AdamW moments 8·P_trainable
 *   + activations kept for backward ≈ L·B·T·(14·H + 4·I)·4 bytes  (per decoder layer: norms, q/k/v/o,
 *     rotary, attention output, MLP gate/up/act/down inputs)  + L·B·n_heads·T²·2·4 (scores + softmax)
 *   + logits / softmax of the LM head: 2·B·T·V·4 (chunked fused loss makes this an upper bound)
 * It is an estimate of the peak, good to a factor of about 1.5; it ignores allocator slack.
 */
import { readLlamaConfig, type LlamaConfig } from '@cllama/lora';
import { countParameters } from '../memory.js';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { plannedSteps } from './loop.js';
import { trainablePlan, type TrainArgs } from './options.js';

export interface DryRunPlan {
  mode: string;
  stage: number | string;
  model: { hiddenSize: number; numHiddenLayers: number; intermediateSize: number; numAttentionHeads: number; vocabSizeConfig: number; vocabSize: number };
  trainable: { kind: string; loraTargets: string[]; loraRank: number | null; modulesToSave: string[] };
  trainableParameters: number;
  totalParameters: number;
  trainablePercent: number;
  sequenceLength: number;
  tokensPerOptimizerStep: number;
  examplesPerOptimizerStep: number;
  /** Optimizer steps, when known (--max-steps, or --num-train-epochs with a known example count). */
  steps: number | null;
  stepsNote: string;
  memory: { weightsBytes: number; gradientsBytes: number; optimizerBytes: number; activationsBytes: number; totalBytes: number };
}

export async function dryRunPlan(args: TrainArgs, opts: { numTrainExamples?: number } = {}): Promise<DryRunPlan> {
  const config = await readLlamaConfig(args.modelNameOrPath);
  const vocabSize = args.tokenizerNameOrPath ? (await loadTokenizer(args.tokenizerNameOrPath)).vocabSize : config.vocabSize;
  const plan = trainablePlan(args);
  // a tied base with embed_tokens / lm_head in modules_to_save trains them as two copies (untied, as PEFT does)
  const untied = config.tieWordEmbeddings && plan.kind === 'lora' && plan.modulesToSave.some((m) => m === 'embed_tokens' || m === 'lm_head');
  const resized: LlamaConfig = { ...config, vocabSize, ...(untied ? { tieWordEmbeddings: false } : {}) };
  const counted =
    plan.kind === 'embeddings'
      ? countParameters(resized, { trainInPlace: ['embed_tokens'] })
      : plan.kind === 'full'
        ? countParameters(resized, { trainInPlace: ['embed_tokens', 'lm_head', '_proj', 'norm'] }) // every weight
        : countParameters(resized, { lora: { r: args.loraRank, targetModules: plan.loraTargets }, modulesToSave: plan.modulesToSave });
  const seqLen = args.mode === 'pretrain' ? args.blockSize : args.maxSeqLength;
  const examplesPerStep = args.perDeviceTrainBatchSize * args.gradientAccumulationSteps;
  let steps: number | null = null;
  let stepsNote: string;
  if (args.maxSteps > 0) {
    steps = args.maxSteps;
    stepsNote = '--max-steps';
  } else if (opts.numTrainExamples !== undefined) {
    steps = plannedSteps(opts.numTrainExamples, args).maxSteps;
    stepsNote = `${args.numTrainEpochs} epoch(s) of ${opts.numTrainExamples} examples`;
  } else {
    stepsNote = 'unknown without data: pass --max-steps, or the data to count examples';
  }
  const { hiddenSize: H, intermediateSize: I, numHiddenLayers: L, numAttentionHeads: nh } = config;
  const B = args.perDeviceTrainBatchSize;
  const weightsBytes = 4 * counted.total;
  const gradientsBytes = 4 * counted.trainable;
  const optimizerBytes = 8 * counted.trainable;
  const activationsBytes = L * B * seqLen * (14 * H + 4 * I) * 4 + L * B * nh * seqLen * seqLen * 2 * 4 + 2 * B * seqLen * vocabSize * 4;
  return {
    mode: args.mode,
    stage: args.mode === 'pretrain' ? args.stage : 'sft',
    model: { hiddenSize: H, numHiddenLayers: L, intermediateSize: I, numAttentionHeads: nh, vocabSizeConfig: config.vocabSize, vocabSize },
    trainable: { kind: plan.kind, loraTargets: plan.loraTargets, loraRank: plan.kind === 'lora' ? args.loraRank : null, modulesToSave: plan.modulesToSave },
    trainableParameters: counted.trainable,
    totalParameters: counted.total,
    trainablePercent: counted.percent,
    sequenceLength: seqLen,
    tokensPerOptimizerStep: examplesPerStep * seqLen,
    examplesPerOptimizerStep: examplesPerStep,
    steps,
    stepsNote,
    memory: { weightsBytes, gradientsBytes, optimizerBytes, activationsBytes, totalBytes: weightsBytes + gradientsBytes + optimizerBytes + activationsBytes },
  };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

export function formatPlan(p: DryRunPlan): string {
  const lines = [
    `plan: ${p.mode}${p.mode === 'pretrain' ? ` stage ${p.stage}` : ''} (${p.trainable.kind}${p.trainable.kind === 'lora' ? `, r=${p.trainable.loraRank} on ${p.trainable.loraTargets.join(',')}` : ''}${p.trainable.modulesToSave.length ? `; full: ${p.trainable.modulesToSave.join(',')}` : ''})`,
    `model: hidden ${p.model.hiddenSize}, ${p.model.numHiddenLayers} layers, inter ${p.model.intermediateSize}, vocab ${p.model.vocabSizeConfig}${p.model.vocabSize !== p.model.vocabSizeConfig ? ` → ${p.model.vocabSize} (resized to the tokenizer)` : ''}`,
    `trainable params: ${p.trainableParameters.toLocaleString('en-US')} || all params: ${p.totalParameters.toLocaleString('en-US')} || trainable%: ${p.trainablePercent.toFixed(2)}%`,
    `tokens per optimizer step: ${p.tokensPerOptimizerStep.toLocaleString('en-US')} (${p.examplesPerOptimizerStep} sequences × ${p.sequenceLength})`,
    `optimizer steps: ${p.steps ?? '?'} (${p.stepsNote})`,
    `memory estimate (fp32): weights ${gib(p.memory.weightsBytes)} + grads ${gib(p.memory.gradientsBytes)} + AdamW ${gib(p.memory.optimizerBytes)} + activations ${gib(p.memory.activationsBytes)} = ${gib(p.memory.totalBytes)}`,
  ];
  return lines.join('\n');
}
