/**
 * LLaMA (HF `LlamaForCausalLM`) in tfjs-core, read top to bottom:
 *
 *   tokens → embed_tokens → N × [ x + attention(rmsnorm(x)) ; x + mlp(rmsnorm(x)) ] → norm → lm_head
 *
 *   attention: q,k,v projections → rotary embeddings (rotate-half) on q,k → k,v repeated for grouped-
 *              query attention → softmax(q kᵀ / √d + causal mask) v → o_proj
 *   mlp:       down_proj( silu(gate_proj(x)) * up_proj(x) )          (SwiGLU)
 *
 * Parameters are tf.Variables kept in a map under their Hugging Face names
 * (`model.layers.0.self_attn.q_proj.weight`, …) with HF's shapes ([out, in] for projections).
 * LoRA adapters (PEFT semantics) can be attached to any of the seven projections.
 *
 * The model knows nothing of backends: it is given the facts of the one it runs on (src/backends/
 * facts.ts; by default the active backend's when it is built) and picks the fast form of the same
 * mathematics from them (transpose flags, per-head attention, loss chunks, synchronous reads), as
 * nanoGPT's model is given `flash` rather than asking for the device.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendFacts } from '../backends/facts.js';
import { backendFacts } from '../backends/registry.js';
import type { LlamaConfig } from './config.js';
import { applyRotary, attention, embeddingLookup, linear, linearTransposed, rmsNorm, rotaryTables, silu } from './ops.js';
import { fusedLinearCrossEntropy } from './lm-head-loss.js';
import { releaseHeadBlocks } from './lm-head-blocks.js';
import { checkpointed } from './checkpoint.js';
import { fusedDecoderLayer, hasFusedDecoderLayer, type FusedLayerLora } from './fused-layer.js';
import { KVCache } from './kv-cache.js';
import { matchesModulesToSave, mergeLora, peftFullKey } from '@cllama/lora';
import { LoraLayers, newVariable, type LoraAttachConfig, type LoraTensor } from './lora-layers.js';
import { resizedEmbeddingRows } from './resize.js';
import { TrainerError } from '../errors.js';

export class ModelError extends TrainerError {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/** A named weight as plain data, HF layout. */
export interface WeightTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

/** Every weight name and shape a config implies, in HF's order. */
export function llamaWeightShapes(config: LlamaConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: inter, vocabSize: v } = config;
  const headDim = h / config.numAttentionHeads;
  const kvDim = headDim * config.numKeyValueHeads;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [v, h]);
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.self_attn.q_proj.weight`, [h, h]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kvDim, h]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kvDim, h]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, h]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [inter, h]);
    shapes.set(`${p}.mlp.up_proj.weight`, [inter, h]);
    shapes.set(`${p}.mlp.down_proj.weight`, [h, inter]);
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [v, h]);
  return shapes;
}

/** Names some checkpoints carry that are buffers, not weights (recomputed here). */
function isIgnorableBuffer(name: string): boolean {
  return name.endsWith('.rotary_emb.inv_freq');
}

function validateConfig(config: LlamaConfig): void {
  const { hiddenSize, numAttentionHeads, numKeyValueHeads } = config;
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ModelError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`);
  }
  if ((hiddenSize / numAttentionHeads) % 2 !== 0) throw new ModelError('the head dimension must be even for rotary embeddings');
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new ModelError(`num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  const scaling = config.ropeScaling as { type?: string; factor?: number } | null;
  if (scaling && (scaling.type !== 'linear' || !(Number(scaling.factor) > 0))) {
    throw new ModelError(`rope_scaling ${JSON.stringify(scaling)} is not supported: only null or {"type":"linear","factor":>0}`);
  }
}

let modelCounter = 0;

/** Constructor argument for fromCheckpoint: weights are added one by one afterwards. */
const LOAD_LATER: unique symbol = Symbol('load later');

export interface ForwardOptions {
  /** [batch, keys] of 1 (attend) / 0 (padding); keys = cached + new positions. */
  attentionMask?: tf.Tensor2D;
  /** Past keys/values; the new ones are appended (see KVCache.commit). */
  cache?: KVCache;
}

export interface LossOptions {
  attentionMask?: tf.Tensor2D;
  /** Tokens per chunk in the fused LM-head + cross-entropy (memory vs. speed). */
  chunkTokens?: number;
  /** Keep the softmax for the backward pass up to this many bytes, else recompute (default 256 MiB). */
  keepProbsBytes?: number;
}

export class LlamaModel {
  readonly config: LlamaConfig;
  /** The facts of the backend the model's tensors live on, given when it is built. */
  readonly facts: BackendFacts;
  /** Dropout (LoRA) is only active in training mode; see train()/eval(). */
  training = false;
  /**
   * Recompute each decoder layer's activations in the backward pass instead of keeping them (HF's
   * gradient_checkpointing; model/checkpoint.ts). A training step then holds every layer's input
   * plus one layer's activations at a time, for one more forward pass through the layers. Applies in
   * training mode only, as in transformers.
   */
  gradientCheckpointing = false;
  /**
   * Run each decoder layer as one fused kernel where the backend has one (native: fused-layer.ts),
   * except with a KV cache. false runs the op chain below, the definition (tests compare the two).
   */
  fusedLayers = true;
  /** LoRA dropout seeds drawn by a checkpointed layer's forward, replayed when it is recomputed. */
  private dropoutSeeds: { mode: 'record' | 'replay'; seeds: number[]; next: number } | undefined;
  private readonly params = new Map<string, tf.Variable>();
  private readonly id = ++modelCounter;
  private lora: LoraLayers | undefined;
  private disposed = false;
  /** Transposed weights kept between calls while inference caching is on (see retainTransposedWeights). */
  private transposed: Map<string, { dataId: object; t: tf.Tensor }> | undefined;
  private transposedHolders = 0;

  /**
   * Builds the model from HF-named weights. Every weight the config implies must be present with
   * its exact shape; unknown names are an error (a tied `lm_head.weight` and rotary `inv_freq`
   * buffers are ignored). `facts`: the backend's (default: the active backend's).
   */
  constructor(config: LlamaConfig, weights: Iterable<WeightTensor> | typeof LOAD_LATER, facts: BackendFacts = backendFacts()) {
    validateConfig(config);
    this.config = { ...config, raw: { ...config.raw } };
    this.facts = facts;
    if (weights === LOAD_LATER) return;
    try {
      for (const w of weights) this.addWeight(w.name, w.shape, w.data);
      this.assertComplete();
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /**
   * Loads weights one at a time from a checkpoint reader (e.g. @cllama/lora's HFCheckpoint), so
   * peak memory is the model plus one tensor. `facts`: the backend's (default: the active backend's).
   */
  static async fromCheckpoint(
    reader: {
      config: LlamaConfig;
      names(): string[];
      info(name: string): { shape: number[] };
      read(name: string): Promise<Float32Array>;
    },
    facts: BackendFacts = backendFacts(),
  ): Promise<LlamaModel> {
    const model = new LlamaModel(reader.config, LOAD_LATER, facts);
    try {
      for (const name of reader.names()) {
        if (!model.wants(name)) continue;
        model.addWeight(name, reader.info(name).shape, await reader.read(name));
      }
      model.assertComplete();
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  }

  private wants(name: string): boolean {
    return !isIgnorableBuffer(name) && !(name === 'lm_head.weight' && this.config.tieWordEmbeddings);
  }

  private addWeight(name: string, shape: number[], data: Float32Array): void {
    if (!this.wants(name)) return;
    const expected = llamaWeightShapes(this.config).get(name);
    if (!expected) throw new ModelError(`unexpected weight '${name}': not part of a LLaMA with this config (is it a LLaMA checkpoint?)`);
    if (this.params.has(name)) throw new ModelError(`weight '${name}' given twice`);
    if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
      throw new ModelError(`weight '${name}' has shape [${shape}], the config implies [${expected}]`);
    }
    if (data.length !== expected.reduce((a, b) => a * b, 1)) throw new ModelError(`weight '${name}' has ${data.length} values for shape [${expected}]`);
    this.params.set(name, newVariable(data, expected, this.variableName(name)));
  }

  private assertComplete(): void {
    for (const [name, shape] of llamaWeightShapes(this.config)) {
      if (!this.params.has(name)) throw new ModelError(`missing weight '${name}' (shape [${shape}])`);
    }
  }

  /** A model with HF's default initialisation (normal(0, 0.02) matrices, ones for norms), seeded. */
  static random(config: LlamaConfig, seed = 0, initializerRange = 0.02): LlamaModel {
    const weights: WeightTensor[] = [];
    let s = seed;
    for (const [name, shape] of llamaWeightShapes(config)) {
      const t = tf.tidy(() => (shape.length === 1 ? tf.ones(shape) : tf.randomNormal(shape, 0, initializerRange, 'float32', s++)));
      const data = t.dataSync() as Float32Array;
      t.dispose(); // the variables get their own copy: keeping this one doubled the model's memory
      weights.push({ name, shape, data });
    }
    return new LlamaModel(config, weights);
  }

  private variableName(hfName: string): string {
    return `llama${this.id}/${hfName}`;
  }

  private param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new ModelError(`no parameter '${name}'`);
    return p;
  }

  private get lmHeadWeight(): tf.Variable {
    return this.config.tieWordEmbeddings ? this.param('model.embed_tokens.weight') : this.param('lm_head.weight');
  }

  train(mode = true): this {
    this.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** HF names → variables (base weights, then LoRA A/B), optionally filtered by name. */
  namedVariables(filter?: (name: string) => boolean): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [name, v] of this.params) if (!filter || filter(name)) out.set(name, v);
    if (this.lora) for (const [name, v] of this.lora.variables) if (!filter || filter(name)) out.set(name, v);
    return out;
  }

  /**
   * Sets tf.Variable.trainable from a name filter: tf.variableGrads without an explicit list then
   * differentiates only these, and the fused LM-head loss skips the [vocab, hidden] gradient of a
   * frozen lm_head (stage 1 trains the embeddings only). Returns the trainable variables.
   */
  setTrainable(filter: (name: string) => boolean): tf.Variable[] {
    const trainable: tf.Variable[] = [];
    for (const [name, v] of this.namedVariables()) {
      v.trainable = filter(name);
      if (v.trainable) trainable.push(v);
    }
    return trainable;
  }

  /** The variables, optionally filtered by HF name (e.g. `n => n.includes('embed_tokens')`). */
  variables(filter?: (name: string) => boolean): tf.Variable[] {
    return [...this.namedVariables(filter).values()];
  }

  // ---------------------------------------------------------------- forward pass

  /**
   * Keeps every weight's transpose once computed and reuses it until the returned release function
   * has been called by every holder. Generation runs one token at a time, and re-transposing lm_head
   * alone is 12.8 M floats per token on the bench model. Costs one extra copy of the matrices while
   * held; not for use under a gradient tape.
   */
  retainTransposedWeights(): () => void {
    this.transposed ??= new Map();
    this.transposedHolders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.transposedHolders > 0 || !this.transposed) return;
      for (const { t } of this.transposed.values()) t.dispose();
      this.transposed = undefined;
    };
  }

  /** x @ Wᵀ for the weight `name`, using the cached transpose when inference caching is on. */
  private linearByName(x: tf.Tensor, name: string, weight: tf.Variable = this.param(name)): tf.Tensor {
    if (!this.transposed) return this.linear(x, weight);
    let hit = this.transposed.get(name);
    // A variable's dataId changes when it is assigned: the cached transpose is then stale.
    if (!hit || hit.dataId !== weight.dataId) {
      hit?.t.dispose();
      hit = { dataId: weight.dataId, t: tf.keep(tf.transpose(weight)) };
      this.transposed.set(name, hit);
    }
    return linearTransposed(x, hit.t);
  }

  /** x @ Wᵀ (ops.ts linear) in the backend's fast form. */
  private linear(x: tf.Tensor, weight: tf.Tensor): tf.Tensor {
    return linear(x, weight, this.facts.transposeFlagsFree);
  }

  /** A projection (`model.layers.3.self_attn.q_proj`), with its LoRA branch when one is attached. */
  private project(module: string, x: tf.Tensor): tf.Tensor {
    const base = this.linearByName(x, `${module}.weight`);
    const adapter = this.lora?.get(module);
    if (!adapter) return base;
    const input = this.training && adapter.dropout > 0 ? tf.dropout(x, adapter.dropout, undefined, this.dropoutSeed()) : x;
    return tf.add(base, tf.mul(this.linear(this.linear(input, adapter.a), adapter.b), adapter.scaling));
  }

  /** The next LoRA dropout seed: drawn from the adapter's stream, or replayed (see checkpointedLayer). */
  private dropoutSeed(): number {
    const r = this.dropoutSeeds;
    if (r?.mode === 'replay') {
      const seed = r.seeds[r.next++];
      if (seed === undefined) throw new ModelError('a recomputed layer drew more dropout masks than its forward pass');
      return seed;
    }
    const seed = this.lora!.nextSeed();
    r?.seeds.push(seed);
    return seed;
  }

  /** Runs `f` with the LoRA dropout seeds recorded into, or replayed from, `seeds`. */
  private withDropoutSeeds<T>(mode: 'record' | 'replay', seeds: number[], f: () => T): T {
    const outer = this.dropoutSeeds;
    this.dropoutSeeds = { mode, seeds, next: 0 };
    try {
      return f();
    } finally {
      this.dropoutSeeds = outer;
    }
  }

  /** Additive attention mask [batch|1, 1, queries, keys]: 0 where allowed, -1e9 elsewhere. */
  private attentionBias(batch: number, queries: number, past: number, attentionMask?: tf.Tensor2D): tf.Tensor {
    const keys = past + queries;
    const causal = new Float32Array(queries * keys);
    for (let i = 0; i < queries; i++) for (let j = past + i + 1; j < keys; j++) causal[i * keys + j] = -1e9;
    let bias: tf.Tensor = tf.tensor4d(causal, [1, 1, queries, keys]);
    if (attentionMask) {
      if (attentionMask.shape[0] !== batch || attentionMask.shape[1] !== keys) {
        throw new ModelError(`attention mask is [${attentionMask.shape}], expected [${batch}, ${keys}]`);
      }
      const padding = tf.reshape(tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), -1e9), [batch, 1, 1, keys]);
      bias = tf.add(bias, padding);
    }
    return bias;
  }

  private attention(layer: number, x: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }, bias: tf.Tensor, cache?: KVCache): tf.Tensor {
    const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, hiddenSize } = this.config;
    const headDim = hiddenSize / heads;
    const [batch, seq] = x.shape as [number, number, number];
    const p = `model.layers.${layer}.self_attn`;
    const split = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [batch, seq, n, headDim]), [0, 2, 1, 3]);

    const q = applyRotary(split(this.project(`${p}.q_proj`, x), heads), rope.cos, rope.sin);
    let k = applyRotary(split(this.project(`${p}.k_proj`, x), kvHeads), rope.cos, rope.sin);
    let v = split(this.project(`${p}.v_proj`, x), kvHeads);
    if (cache) [k, v] = cache.append(layer, k, v);

    // Grouped-query attention: each key/value head serves heads / kvHeads query heads.
    const groups = heads / kvHeads;
    if (groups > 1) {
      const keys = k.shape[2]!;
      const repeat = (t: tf.Tensor) =>
        tf.reshape(tf.tile(tf.reshape(t, [batch, kvHeads, 1, keys * headDim]), [1, 1, groups, 1]), [batch, heads, keys, headDim]);
      k = repeat(k);
      v = repeat(v);
    }

    // softmax(q·kᵀ/√d + mask)·v: [batch, heads, seq, headDim]
    const context = attention(q, k, v, bias, 1 / Math.sqrt(headDim), this.facts.perHeadAttention);
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, seq, hiddenSize]);
    return this.project(`${p}.o_proj`, merged);
  }

  private mlp(layer: number, x: tf.Tensor): tf.Tensor {
    const p = `model.layers.${layer}.mlp`;
    return this.project(`${p}.down_proj`, tf.mul(silu(this.project(`${p}.gate_proj`, x)), this.project(`${p}.up_proj`, x)));
  }

  /** Final hidden states (after model.norm) [batch, seq, hidden]. */
  hiddenStates(inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    this.assertAlive();
    if (inputIds.rank !== 2) throw new ModelError(`input ids must be [batch, seq], got [${inputIds.shape}]`);
    const [batch, seq] = inputIds.shape;
    const ids = Int32Array.from(inputIds.dataSync());
    const past = opts.cache?.length ?? 0;
    const headDim = this.config.hiddenSize / this.config.numAttentionHeads;
    const rope = rotaryTables(past, seq, headDim, this.config.ropeTheta, this.config.ropeScaling?.factor ?? 1);
    const bias = this.attentionBias(batch, seq, past, opts.attentionMask);

    let x = embeddingLookup(this.param('model.embed_tokens.weight'), ids, [batch, seq]);
    const recompute = this.gradientCheckpointing && this.training && !opts.cache;
    const fused = this.fusedLayers && !opts.cache && hasFusedDecoderLayer();
    for (let l = 0; l < this.config.numHiddenLayers; l++) {
      if (fused) x = this.fusedLayer(l, x, rope, bias, recompute);
      else x = recompute ? this.checkpointedLayer(l, x, rope, bias) : this.decoderLayer(l, x, rope, bias, opts.cache);
    }
    return rmsNorm(x, this.param('model.norm.weight'), this.config.rmsNormEps) as tf.Tensor3D;
  }

  /** One decoder layer: x + attention(rmsnorm(x)), then that + mlp(rmsnorm(that)). */
  private decoderLayer(l: number, x: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }, bias: tf.Tensor, cache?: KVCache): tf.Tensor {
    const p = `model.layers.${l}`;
    const eps = this.config.rmsNormEps;
    const h = tf.add(x, this.attention(l, rmsNorm(x, this.param(`${p}.input_layernorm.weight`), eps), rope, bias, cache));
    return tf.add(h, this.mlp(l, rmsNorm(h, this.param(`${p}.post_attention_layernorm.weight`), eps)));
  }

  /** decoderLayer as one fused kernel (fused-layer.ts): the same weights, LoRA branches and dropout seeds. */
  private fusedLayer(l: number, x: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }, bias: tf.Tensor, checkpoint: boolean): tf.Tensor {
    const p = `model.layers.${l}`;
    const weights: Record<string, tf.Tensor> = {
      input_layernorm: this.param(`${p}.input_layernorm.weight`),
      post_attention_layernorm: this.param(`${p}.post_attention_layernorm.weight`),
    };
    const lora: FusedLayerLora[] = [];
    let dropoutRate = 0;
    for (const proj of PROJECTIONS) {
      const module = `${p}.${proj === 'gate_proj' || proj === 'up_proj' || proj === 'down_proj' ? 'mlp' : 'self_attn'}.${proj}`;
      weights[proj] = this.param(`${module}.weight`);
      const adapter = this.lora?.get(module);
      if (!adapter) continue;
      // the chain's order of tf.dropout seeds: q, k, v, o, gate, up, down
      const dropout = this.training && adapter.dropout > 0;
      if (dropout) dropoutRate = adapter.dropout;
      lora.push({ module: proj, a: adapter.a, b: adapter.b, scaling: adapter.scaling, seed: dropout ? this.dropoutSeed() : undefined });
    }
    const { hiddenSize, intermediateSize, numAttentionHeads, numKeyValueHeads, rmsNormEps } = this.config;
    return fusedDecoderLayer({
      x,
      cos: rope.cos,
      sin: rope.sin,
      bias,
      weights,
      lora,
      hidden: hiddenSize,
      intermediate: intermediateSize,
      heads: numAttentionHeads,
      kvHeads: numKeyValueHeads,
      eps: rmsNormEps,
      dropoutRate,
      checkpoint,
    });
  }

  /**
   * decoderLayer as a checkpointed segment (gradientCheckpointing): only its input (and the shared
   * rotary tables and mask) are kept for the backward pass, which runs the layer again with the same
   * dropout masks. Differentiated w.r.t. the input and the layer's trainable variables.
   */
  private checkpointedLayer(l: number, x: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }, bias: tf.Tensor): tf.Tensor {
    const prefix = `model.layers.${l}.`;
    const trainable = [...this.namedVariables((n) => n.startsWith(prefix)).values()].filter((v) => v.trainable);
    const seeds: number[] = [];
    let recorded = false;
    return checkpointed(
      (input, [cos, sin, b]) => {
        const mode = recorded ? 'replay' : 'record';
        recorded = true;
        return this.withDropoutSeeds(mode, seeds, () => this.decoderLayer(l, input, { cos: cos!, sin: sin! }, b!));
      },
      x,
      trainable,
      [rope.cos, rope.sin, bias],
    );
  }

  /** Logits [batch, seq, vocab]. Materialises the full vocabulary for every position: for scoring. */
  logits(inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const h = this.hiddenStates(inputIds, opts);
      const head = this.lora?.get('lm_head') ? this.project('lm_head', h) : this.linear(h, this.lmHeadWeight);
      return head as tf.Tensor3D;
    });
  }

  /**
   * Logits of the last position only, [batch, vocab], running the new tokens through the cache
   * (which is committed afterwards). For incremental decoding.
   */
  nextTokenLogits(inputIds: tf.Tensor2D, cache: KVCache): tf.Tensor2D {
    const out = tf.tidy(() => {
      const h = this.hiddenStates(inputIds, { cache });
      const [batch, seq, hidden] = h.shape;
      const last = tf.reshape(tf.slice(h, [0, seq - 1, 0], [batch, 1, hidden]), [batch, hidden]);
      return (this.lora?.get('lm_head') ? this.project('lm_head', last) : this.linearByName(last, 'lm_head.weight', this.lmHeadWeight)) as tf.Tensor2D;
    });
    cache.commit();
    return out;
  }

  /**
   * HF causal-LM loss: logits at position t predict labels at t+1; labels equal to -100 are ignored;
   * mean over the counted tokens. Differentiable (use inside tf.variableGrads / tf.grads).
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, opts: LossOptions = {}): tf.Scalar {
    if (labels.shape[0] !== inputIds.shape[0] || labels.shape[1] !== inputIds.shape[1]) {
      throw new ModelError(`labels [${labels.shape}] must have the shape of input ids [${inputIds.shape}]`);
    }
    const [batch, seq] = inputIds.shape;
    const labelData = labels.dataSync();
    const targets = new Int32Array(batch * (seq - 1));
    for (let b = 0; b < batch; b++) for (let t = 0; t < seq - 1; t++) targets[b * (seq - 1) + t] = labelData[b * seq + t + 1]!;
    return tf.tidy(() => {
      const h = this.hiddenStates(inputIds, { attentionMask: opts.attentionMask });
      const shifted = tf.reshape(tf.slice(h, [0, 0, 0], [batch, seq - 1, -1]), [batch * (seq - 1), this.config.hiddenSize]) as tf.Tensor2D;
      return fusedLinearCrossEntropy(shifted, this.lmHeadWeight as tf.Tensor as tf.Tensor2D, targets, {
        chunkTokens: opts.chunkTokens,
        keepProbsBytes: opts.keepProbsBytes,
        facts: this.facts,
      });
    });
  }

  // ---------------------------------------------------------------- vocabulary, LoRA, export

  /**
   * Resizes embed_tokens (and lm_head when untied) to `newSize` rows. Kept rows are unchanged; new
   * rows follow transformers' `resize_token_embeddings(mean_resizing=True)`: sampled from a normal
   * with the old rows' mean and 1e-9 × their covariance, or exactly the mean when that covariance is
   * not positive definite. Seeded.
   */
  resizeTokenEmbeddings(newSize: number, seed = 0): void {
    this.assertAlive();
    if (!Number.isInteger(newSize) || newSize <= 0) throw new ModelError(`new vocabulary size must be a positive integer, got ${newSize}`);
    if (this.lora?.get('lm_head')) throw new ModelError('resize the token embeddings before attaching LoRA to lm_head');
    const names = this.config.tieWordEmbeddings ? ['model.embed_tokens.weight'] : ['model.embed_tokens.weight', 'lm_head.weight'];
    for (const [i, name] of names.entries()) {
      const old = this.param(name);
      const [oldRows, width] = old.shape as [number, number];
      const data = resizedEmbeddingRows(old.dataSync() as Float32Array, oldRows, width, newSize, seed + i);
      old.dispose();
      this.params.set(name, newVariable(data, [newSize, width], `${this.variableName(name)}#${newSize}`));
    }
    this.config.vocabSize = newSize;
    this.config.raw = { ...this.config.raw, vocab_size: newSize };
  }

  /**
   * Gives a tied model its own `lm_head.weight`, a copy of embed_tokens (on the device, every backend),
   * and marks the config untied. What PEFT does on a tied model with `modules_to_save` embed_tokens
   * and/or lm_head: each named module gets its own trainable copy, the other keeps the shared base
   * weight — so from then on input and output embeddings differ. No-op on an untied model.
   */
  untieWordEmbeddings(): void {
    this.assertAlive();
    if (!this.config.tieWordEmbeddings) return;
    if (this.lora) throw new ModelError('untie the word embeddings before attaching LoRA');
    const embed = this.param('model.embed_tokens.weight');
    const copy = tf.clone(embed);
    this.params.set('lm_head.weight', tf.variable(copy, true, `${this.variableName('lm_head.weight')}#untied`));
    copy.dispose();
    this.config.tieWordEmbeddings = false;
    this.config.raw = { ...this.config.raw, tie_word_embeddings: false };
  }

  /**
   * Adds LoRA A/B variables (PEFT semantics: y = W x + B A dropout(x) · alpha / r) to every
   * projection matched by `config.targetModules`. `tensors` (PEFT key names) loads a trained
   * adapter; otherwise A is kaiming-uniform and B zero, as PEFT initialises them. Seeded.
   */
  attachLora(config: LoraAttachConfig, tensors?: Map<string, LoraTensor>, seed = 0): void {
    this.assertAlive();
    if (this.lora) throw new ModelError('a LoRA adapter is already attached; detachLora() first');
    const linears = new Map<string, [number, number]>();
    for (const [name, v] of this.params) {
      if (name.endsWith('_proj.weight') || name === 'lm_head.weight') linears.set(name.slice(0, -'.weight'.length), v.shape as [number, number]);
    }
    this.lora = new LoraLayers(config, linears, tensors, seed);
  }

  /** Restarts the LoRA dropout seed stream (no-op without an adapter). Same seed → same masks. */
  reseedDropout(seed: number): void {
    this.lora?.reseed(seed);
  }

  detachLora(): void {
    this.lora?.dispose();
    this.lora = undefined;
  }

  get loraAttached(): boolean {
    return this.lora !== undefined;
  }

  /**
   * The attached adapter's tensors under PEFT key names (for @cllama/lora's writePeftAdapter):
   * lora_A/lora_B pairs plus the full weights named by the config's modules_to_save.
   */
  exportLora(): Map<string, LoraTensor> {
    if (!this.lora) throw new ModelError('no LoRA adapter attached');
    const out = this.lora.export();
    const modulesToSave = this.lora.config.modulesToSave ?? [];
    if (modulesToSave.length > 0) {
      for (const name of this.params.keys()) {
        if (matchesModulesToSave(name, modulesToSave)) {
          const w = this.exportWeight(name);
          out.set(peftFullKey(name), { shape: w.shape, data: w.data });
        }
      }
    }
    return out;
  }

  /**
   * Folds every LoRA branch into its base weight (W += B·A·scaling) and detaches: via @cllama/lora's
   * mergeLora on the host where the backend reads synchronously, as the same product on the device
   * elsewhere.
   */
  mergeLora(): void {
    if (!this.lora) throw new ModelError('no LoRA adapter attached');
    for (const [module, adapter] of this.lora.adapters) {
      const name = `${module}.weight`;
      const weight = this.param(name);
      if (!this.facts.syncReads) {
        tf.tidy(() => weight.assign(tf.add(weight, tf.mul(tf.matMul(adapter.b, adapter.a), adapter.scaling))));
        continue;
      }
      const [outFeatures, inFeatures] = weight.shape as [number, number];
      const merged = mergeLora(Float32Array.from(weight.dataSync() as Float32Array), {
        a: adapter.a.dataSync() as Float32Array,
        b: adapter.b.dataSync() as Float32Array,
        r: adapter.a.shape[0]!,
        inFeatures,
        outFeatures,
        scaling: adapter.scaling,
      });
      this.setWeight(name, merged);
    }
    this.detachLora();
  }

  /** Base weights as HF-named float32 data (copies), in HF order. LoRA is not merged in. */
  exportWeights(): WeightTensor[] {
    return [...this.params.keys()].map((name) => this.exportWeight(name));
  }

  /** One base weight as HF-named float32 data (a copy), read asynchronously: works on every backend. */
  async readWeight(name: string): Promise<WeightTensor> {
    const v = this.param(name);
    return { name, shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array) };
  }

  /** One base weight as HF-named float32 data (a copy); a synchronous read (not on webgpu: use readWeight). */
  exportWeight(name: string): WeightTensor {
    const v = this.param(name);
    return { name, shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
  }

  /** Replaces a weight's values in place (same shape), e.g. after merging LoRA. */
  setWeight(name: string, data: Float32Array): void {
    const v = this.param(name);
    if (data.length !== v.size) throw new ModelError(`setWeight('${name}'): ${data.length} values for shape [${v.shape}]`);
    const t = tf.tensor(data, v.shape);
    v.assign(t);
    t.dispose();
  }

  /** A new KV cache for generation. */
  newCache(): KVCache {
    return new KVCache(this.config.numHiddenLayers);
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    for (const { t } of this.transposed?.values() ?? []) t.dispose();
    this.transposed = undefined;
    this.lora?.dispose();
    releaseHeadBlocks();
    this.disposed = true;
  }

  private assertAlive(): void {
    if (this.disposed) throw new ModelError('the model was disposed');
  }
}
