/**
 * Memory estimate, checked up front: will this model fit, for this job, on this backend?
 *
 * A model that does not fit must be a one-line error before any weight is read, never a wasm
 * "memory access out of bounds" / Aborted() halfway through the first step. The estimate comes from
 * config.json alone (no weights loaded):
 *
 *   weights     = parameters × 4 bytes (every tensor is float32 in memory, whatever the file's dtype),
 *                 + one transposed copy of the projections and loss head (x @ Wᵀ as transpose + matMul;
 *                 not where the backend's transpose flags are free: its GEMMs take them)
 *   training    = trainable parameters × 4 bytes × 3 (gradient + AdamW's two moments)
 *                   full fine-tune: every parameter; LoRA: A/B + modules_to_save; stage 1: embed_tokens
 *   activations = what the backward pass keeps, per layer and token (float32):
 *                   ~14·hidden (norms, q/k/v and their rotations, GQA-repeated k/v, attention output,
 *                   residuals) + 5·intermediate (gate, up, silu, product) + 2·heads·seq (scores, softmax)
 *                 × layers × batch × seq, plus the loss head's chunked logits / probabilities
 *                 (2 · batch · seq · vocab). Scoring / generation keep one layer's worth at a time;
 *                 so does training with gradient checkpointing, plus every layer's input (hidden).
 *                 Where the backend trains each layer as one fused kernel (the facts'
 *                 fusedLayerSavedFloats: native), a layer keeps its input and the kernel's saved values
 *                 instead of the op chain's tape, counted once (no activationFactor)
 *   runtime     = what the backend itself holds (the facts' runtimeBytes: libraries, sessions, pools)
 *
 * The parameter count is O(1) in the layer count (countParameters): the check must refuse a hostile
 * config.json (3,000,000 layers, hidden sizes near 2^53) in milliseconds, without allocating per layer.
 *
 * The total is compared with the memory the OS can still hand out (os.freemem() — MemAvailable on
 * Linux — or the cgroup limit, whichever is less) and, on a backend with a bounded heap (the facts'
 * `heap`: tfjs-wasm, whose tensors live in one 32-bit heap that aborts past 2 GiB — see
 * backends/wasm/facts.ts), with the part of that heap a step can use; there the estimate adds
 * XNNPACK's packed weight copies.
 *
 * The backend's facts (src/backends/facts.ts, looked up by name) give the transposed copies and the
 * activation factor (the JS-memory backends keep 5× the activations, measured). The figures are
 * estimates (±30 % against PyTorch's measured peak RSS for the same shapes without that factor, which
 * tfjs's tape does not reach), so the check only refuses a run that is clearly over;
 * CLLAMA_MEMORY_CHECK=off skips it.
 *
 * Gradient checkpointing left to the trainer (no --gradient-checkpointing flag; chooseCheckpointing):
 * off when the job fits without it with 20 % of the memory to spare, else on when it fits with it (one
 * line says so; train.py defaults to it), refused up front when it fits neither way.
 */
import * as os from 'node:os';
import { countTrainableParameters, readLlamaConfig, type LlamaConfig, type ParameterCount, type TrainingPlan } from '@cllama/lora';
import { factsOf } from './backends/registry.js';
import { TrainerError } from './errors.js';
import { trainablePlan, type TrainArgs } from './train/options.js';

/** What the model is loaded for; `gradientCheckpointing`: a training step recomputes each layer's activations. */
export type MemoryJob =
  | { kind: 'inference'; batchSize: number; seqLen: number }
  | { kind: 'full'; batchSize: number; seqLen: number; gradientCheckpointing?: boolean }
  | { kind: 'embeddings'; batchSize: number; seqLen: number; gradientCheckpointing?: boolean }
  | {
      kind: 'lora';
      batchSize: number;
      seqLen: number;
      r: number;
      targetModules: readonly string[];
      modulesToSave: readonly string[];
      gradientCheckpointing?: boolean;
    };

export interface MemoryEstimate {
  parameters: number;
  trainableParameters: number;
  weightsBytes: number;
  /** One float32 copy of the projection and loss-head weights (what the transposes, or XNNPACK's packing, add). */
  projectionCopyBytes: number;
  trainingStateBytes: number;
  activationBytes: number;
  /** What the backend itself holds (its facts' runtimeBytes). */
  runtimeBytes: number;
  totalBytes: number;
}

const F32 = 4;

/**
 * @cllama/lora's countTrainableParameters in O(1) of the layer count: it lists every weight of the
 * model (nine per layer), so a config.json claiming 3,000,000 layers would build 27 M objects (V8 runs
 * out of heap) before the memory check could refuse it. Every decoder layer has the same shapes, so the
 * counts are linear in the layer count: count a 1-layer and a 2-layer model and extrapolate (exact up
 * to 2^53; beyond that a float estimate, which is what a refusal needs). Hidden, vocabulary and head
 * sizes only enter as products of numbers (no allocation), and Number.isSafeInteger in the config
 * parser bounds each of them, so no product reaches Infinity.
 */
export function countParameters(config: LlamaConfig, plan: TrainingPlan): Omit<ParameterCount, 'summary'> {
  const layers = config.numHiddenLayers;
  const one = countTrainableParameters({ ...config, numHiddenLayers: 1 }, plan);
  if (layers === 1) return one;
  const two = countTrainableParameters({ ...config, numHiddenLayers: 2 }, plan);
  const trainable = one.trainable + (layers - 1) * (two.trainable - one.trainable);
  const total = one.total + (layers - 1) * (two.total - one.total);
  return { trainable, total, percent: (100 * trainable) / total };
}

/** The estimate for `job` on the tfjs backend named `backend` (its facts; none: a backend without particular facts). */
export function estimateMemory(config: LlamaConfig, job: MemoryJob, backend?: string): MemoryEstimate {
  const facts = factsOf(backend);
  const { hiddenSize: h, intermediateSize: inter, numHiddenLayers: layers, numAttentionHeads: heads, vocabSize: vocab } = config;
  const tokens = job.batchSize * job.seqLen;
  const plan =
    job.kind === 'embeddings'
      ? { trainInPlace: ['embed_tokens'] }
      : job.kind === 'lora'
        ? { lora: { r: job.r, targetModules: job.targetModules }, modulesToSave: job.modulesToSave }
        : {};
  const count = countParameters(config, plan);
  const parameters = count.total;
  const trainable = job.kind === 'inference' ? 0 : job.kind === 'full' ? parameters : count.trainable;
  // x @ Wᵀ transposes each projection (and the loss head) once per step; the copies live as long as the
  // step (kept for the backward pass, or cached for generation): about one more copy of the weights.
  // A backend whose transpose flags are free multiplies with them instead and makes no copy.
  const embedding = vocab * h;
  const transposedCopies = facts.transposeFlagsFree ? 0 : parameters - embedding;
  const perLayerToken = 14 * h + 5 * inter + 2 * heads * job.seqLen;
  const head = 2 * tokens * vocab;
  const checkpointing = job.kind !== 'inference' && job.gradientCheckpointing === true;
  let activations: number;
  if (job.kind !== 'inference' && facts.fusedLayerSavedFloats) {
    // one kernel per layer: its input and its saved values, for every layer or (checkpointing) for the
    // one being recomputed; the loss head's chunks are kernel outputs too
    const loraRanks = job.kind === 'lora' ? job.targetModules.map(() => job.r) : [];
    const saved = facts.fusedLayerSavedFloats({ hidden: h, intermediate: inter, heads, kvHeads: config.numKeyValueHeads, seq: job.seqLen, loraRanks });
    // + one layer's working set inside onnxruntime while a graph runs: ~8 [heads, seq]-per-token blocks
    // (scores, masked scores, probabilities, and in the backward dP, dS and their scaled forms, all live
    // until the run ends), the MLP's two gradients (intermediate), a few hidden-sized ones. Calibrated on
    // the TinyLlama shape at batch 8 × 512 with checkpointing (13.96 GB measured, 2026-12-03)
    const working = tokens * (8 * heads * job.seqLen + 2 * inter + 4 * h);
    activations = (checkpointing ? layers * tokens * h + tokens * saved : layers * tokens * (h + saved)) + working + head;
  } else {
    // kept for the backward pass: every layer's activations, or (checkpointing) every layer's input and
    // the activations of the one layer being recomputed
    const layerActivations =
      job.kind === 'inference' ? tokens * perLayerToken : checkpointing ? layers * tokens * h + tokens * perLayerToken : layers * tokens * perLayerToken;
    activations = (layerActivations + head) * facts.activationFactor;
  }
  const weightsBytes = (parameters + transposedCopies) * F32;
  const trainingStateBytes = trainable * F32 * 3;
  const activationBytes = activations * F32;
  return {
    parameters,
    trainableParameters: trainable,
    weightsBytes,
    projectionCopyBytes: transposedCopies * F32,
    trainingStateBytes,
    activationBytes,
    runtimeBytes: facts.runtimeBytes,
    totalBytes: weightsBytes + trainingStateBytes + activationBytes + facts.runtimeBytes,
  };
}

export class MemoryCheckError extends TrainerError {
  override name = 'MemoryCheckError';
}

/** Memory the OS can still give this process: MemAvailable, capped by a cgroup limit if any. */
export function availableMemoryBytes(): number {
  const free = os.freemem();
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  // constrainedMemory() is the cgroup limit (0 / 2^64-ish when none); minus what this process holds already
  if (constrained && constrained > 0 && constrained < os.totalmem()) return Math.min(free, Math.max(0, constrained - process.memoryUsage().rss));
  return free;
}

function gb(bytes: number): string {
  const v = bytes / 1e9;
  return `${v >= 1e6 ? v.toExponential(1) : v.toFixed(1)} GB`;
}

/** A parameter count in millions; a hostile config's astronomically large one in exponent form. */
function millions(n: number): string {
  const m = n / 1e6;
  return `${m >= 1e9 ? m.toExponential(1) : m.toFixed(0)} M`;
}

function describe(e: MemoryEstimate, job: MemoryJob): string {
  const what =
    job.kind === 'inference'
      ? 'weights + activations'
      : job.kind === 'lora'
        ? 'weights + LoRA/Adam state + activations'
        : 'weights + gradients + 2 Adam moments + activations';
  const recompute = job.kind !== 'inference' && job.gradientCheckpointing ? ' with gradient checkpointing' : '';
  return `${millions(e.parameters)} parameters need ~${gb(e.totalBytes)} for ${job.kind === 'inference' ? 'inference' : `${job.kind} training`}${recompute} (${what}, batch ${job.batchSize} × seq ${job.seqLen})`;
}

export interface MemoryCheckOptions {
  /** tfjs backend name that will hold the tensors (its facts: a bounded heap adds the heap check). */
  backend: string;
  /** Bytes the OS can still give (default: availableMemoryBytes()). */
  availableBytes?: number;
  /** Model replicas held at once (data-parallel workers each keep one; default 1). */
  replicas?: number;
  /** Environment to read CLLAMA_MEMORY_CHECK from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Why `e` does not fit (the heap, or the memory available — or, with `headroom` < 1, that share of it), as
 * the refusal's middle part; undefined when it fits.
 */
function overLimit(
  e: MemoryEstimate,
  job: MemoryJob,
  opts: MemoryCheckOptions,
  headroom = 1,
): { estimate: string; limit: string; heapAdvice?: string } | undefined {
  // in a bounded heap (tfjs-wasm), XNNPACK packs every weight it multiplies into one more copy inside it
  const { heap, name } = factsOf(opts.backend);
  const heapBytes = e.totalBytes + e.projectionCopyBytes;
  if (heap && !(heapBytes <= heap.usableBytes)) {
    return {
      estimate: describe({ ...e, totalBytes: heapBytes }, job),
      limit: `over the ~${gb(heap.usableBytes)} a step can use of the ${name} backend's ${gb(heap.limitBytes)} heap`,
      heapAdvice: heap.advice,
    };
  }
  const available = opts.availableBytes ?? availableMemoryBytes();
  // each data-parallel replica holds its own weights; the batch (activations) is split among them
  // (written as !(a <= b): an estimate that is not a number is refused, never waved through)
  const replicas = opts.replicas ?? 1;
  const needed = e.totalBytes + (replicas - 1) * e.weightsBytes;
  if (!(needed <= available * headroom)) {
    const times = replicas > 1 ? ` (~${gb(needed)} with ${replicas} threads' model copies)` : '';
    const share = headroom < 1 ? `${Math.round(headroom * 100)} % of ` : '';
    return { estimate: `${describe(e, job)}${times}`, limit: `more than ${share}the ${gb(available)} of memory available` };
  }
  return undefined;
}

/**
 * Throws a one-line MemoryCheckError when the estimate is over the backend's heap (where it has one)
 * or over the memory available; returns the estimate otherwise.
 */
export function checkMemory(config: LlamaConfig, job: MemoryJob, opts: MemoryCheckOptions): MemoryEstimate {
  const e = estimateMemory(config, job, opts.backend);
  const env = opts.env ?? process.env;
  if (env.CLLAMA_MEMORY_CHECK === 'off') return e;
  const over = overLimit(e, job, opts);
  if (!over) return e;
  const checkpointingHint = job.kind !== 'inference' && !job.gradientCheckpointing ? '--gradient-checkpointing, ' : '';
  const smaller =
    checkpointingHint +
    (job.kind === 'full' ? 'a smaller model or LoRA (stage 2 / sft without --stage full)' : 'a smaller model, a smaller batch or sequence length');
  const what = over.heapAdvice ? `${over.heapAdvice}, or ${smaller}` : `use ${smaller}${(opts.replicas ?? 1) > 1 ? ', fewer --threads' : ''}, or free memory`;
  throw new MemoryCheckError(`${over.estimate}, ${over.limit}: ${what} (CLLAMA_MEMORY_CHECK=off skips this check)`);
}

/** What chooseCheckpointing decided: the setting, the estimate it was checked with, and the line to print when it turned checkpointing on. */
export interface CheckpointingChoice {
  gradientCheckpointing: boolean;
  estimate: MemoryEstimate;
  note?: string;
}

/**
 * Of the memory available, what a job without checkpointing must leave free for chooseCheckpointing to
 * keep it off: the estimate's error (measured peaks 0.8–1.2× of it). Guessing low costs the run (the
 * OS kills it mid-step); guessing high costs one more forward pass per step (~15 %).
 */
export const CHECKPOINTING_HEADROOM = 0.8;

/**
 * The training job's checkpointing when no flag set it: off when the job fits without it within
 * CHECKPOINTING_HEADROOM of the memory available (the heap's own usable part on wasm); on when it does
 * not but fits with it (`note` says so in one line); when it fits neither way, checkMemory's refusal of
 * the job with checkpointing (the smaller of the two estimates). With CLLAMA_MEMORY_CHECK=off, off.
 */
export function chooseCheckpointing(config: LlamaConfig, job: Exclude<MemoryJob, { kind: 'inference' }>, opts: MemoryCheckOptions): CheckpointingChoice {
  const without = { ...job, gradientCheckpointing: false };
  const plain = estimateMemory(config, without, opts.backend);
  const env = opts.env ?? process.env;
  const available = opts.availableBytes ?? availableMemoryBytes();
  const over = env.CLLAMA_MEMORY_CHECK === 'off' ? undefined : overLimit(plain, without, { ...opts, availableBytes: available }, CHECKPOINTING_HEADROOM);
  if (!over) return { gradientCheckpointing: false, estimate: plain };
  const estimate = checkMemory(config, { ...job, gradientCheckpointing: true }, { ...opts, availableBytes: available });
  return {
    gradientCheckpointing: true,
    estimate,
    note: `gradient checkpointing on: without it ${over.estimate}, ${over.limit}; with it ~${gb(estimate.totalBytes)} (--gradient-checkpointing true|false decides it yourself)`,
  };
}

/** The memory job of a training run: its plan (stage 1 / LoRA / full), batch and sequence length. */
export function trainingMemoryJob(args: TrainArgs): Exclude<MemoryJob, { kind: 'inference' }> {
  const plan = trainablePlan(args);
  const batchSize = args.perDeviceTrainBatchSize;
  const seqLen = args.mode === 'pretrain' ? args.blockSize : args.maxSeqLength;
  const gradientCheckpointing = args.gradientCheckpointing;
  if (plan.kind === 'lora')
    return { kind: 'lora', batchSize, seqLen, r: args.loraRank, targetModules: plan.loraTargets, modulesToSave: plan.modulesToSave, gradientCheckpointing };
  return { kind: plan.kind, batchSize, seqLen, gradientCheckpointing };
}

/** The config.json of a model folder, at the tokenizer's vocabulary if larger (the model is resized to it); undefined when unreadable. */
async function configForMemory(dir: string, vocabSize: number | undefined): Promise<LlamaConfig | undefined> {
  let config: LlamaConfig;
  try {
    config = await readLlamaConfig(dir);
  } catch {
    return undefined;
  }
  return vocabSize !== undefined && vocabSize > config.vocabSize ? { ...config, vocabSize } : config;
}

/**
 * chooseCheckpointing for a model folder (its config.json, as checkModelMemory reads it); a folder whose
 * config cannot be read keeps checkpointing off and is left to the loader's own error.
 */
export async function chooseModelCheckpointing(
  dir: string,
  job: Exclude<MemoryJob, { kind: 'inference' }>,
  opts: MemoryCheckOptions & { vocabSize?: number },
): Promise<Omit<CheckpointingChoice, 'estimate'> & { estimate?: MemoryEstimate }> {
  const config = await configForMemory(dir, opts.vocabSize);
  return config ? chooseCheckpointing(config, job, opts) : { gradientCheckpointing: false };
}

/**
 * checkMemory for a model folder: reads its config.json (a larger tokenizer vocabulary, which the model
 * will be resized to, counts). A folder whose config cannot be read is left to the loader's own error.
 */
export async function checkModelMemory(dir: string, job: MemoryJob, opts: MemoryCheckOptions & { vocabSize?: number }): Promise<MemoryEstimate | undefined> {
  const config = await configForMemory(dir, opts.vocabSize);
  return config ? checkMemory(config, job, opts) : undefined;
}
