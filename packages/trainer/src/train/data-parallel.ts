/**
 * Data parallelism over worker threads (`--threads n`), for the single-threaded wasm and cpu backends:
 * n copies of the model, one per thread (this one included), each computing the loss and gradients of
 * a share of every micro-batch's rows; this thread combines them (weighted by counted targets, see
 * micro-batch.ts) and runs the optimizer, then publishes the new trainable values to the workers
 * through shared memory. It is DDP's arithmetic on one machine: the update equals the single-thread
 * one up to the order of floating-point additions.
 *
 * Dropout: shard k of a micro-batch draws its masks from seed + k, so a run is reproducible (and
 * resumable) for a given thread count, but its LoRA-dropout masks differ from a 1-thread run's.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from '../backend.js';
import type { LlamaModel } from '../model/llama.js';
import type { LoraAttachConfig } from '../model/lora-layers.js';
import { loraTensorsOf } from '../model/peft-keys.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './grad-worker.js';
import { microBatchGradients, microBatchLoss, readValues, splitBatch, tensorFromShared, type Batch, type LossModel, type Shard } from './micro-batch.js';
import { TrainerError } from '../errors.js';

export class DataParallelError extends TrainerError {
  override name = 'DataParallelError';
}

/**
 * The worker's code: dist/grad-worker.js next to the bundle, or (tests, development) the .ts source
 * loaded through tsx's loader, which a worker must register itself (--import is not applied to workers).
 */
function newWorker(init: WorkerInit): Worker {
  const here = typeof __dirname !== 'undefined' ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  const built = path.join(here, 'grad-worker.js');
  if (existsSync(built)) return new Worker(pathToFileURL(built), { workerData: init });
  const source = path.join(here, 'grad-worker.ts');
  if (existsSync(source)) {
    const tsx = pathToFileURL(
      createRequire(source)
        .resolve('tsx/esm/api')
        .replace(/\.cjs$/, '.mjs'),
    ).href;
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(source).href)}); });`;
    return new Worker(boot, { eval: true, workerData: init });
  }
  throw new DataParallelError(`cannot find grad-worker.js next to ${here}: the package's dist/ folder is incomplete; reinstall @cllama/trainer`);
}

/** The values of settled worker calls, or the first failure (awaited all, so none is left unobserved). */
function fulfilled<T>(results: PromiseSettledResult<T>[]): T[] {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

class GradWorker {
  private pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  readonly ready: Promise<void>;

  constructor(
    private readonly worker: Worker,
    readonly grads: Float32Array[],
  ) {
    worker.on('message', (r: WorkerReply) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(r);
    });
    worker.on('error', (e) => this.fail(new DataParallelError(`a training worker thread crashed: ${e.message}`)));
    worker.on('exit', (code) => this.fail(new DataParallelError(`a training worker thread exited (code ${code})`)));
    this.ready = this.call(undefined).then(() => undefined);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(this.failure);
  }

  /** Sends a request (or, for the start-up handshake, nothing) and waits for the reply. */
  async call(req: WorkerRequest | undefined): Promise<number> {
    if (this.failure) throw this.failure;
    if (this.pending) throw new DataParallelError('internal: a worker got a second request before answering the first');
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      this.pending = { resolve, reject };
      if (req) this.worker.postMessage(req);
    });
    if (!reply.ok) throw new DataParallelError(`a training worker thread failed: ${reply.error}`);
    return reply.loss;
  }

  async terminate(): Promise<void> {
    this.failure ??= new DataParallelError('the worker pool was closed');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

export interface DataParallelOptions {
  threads: number;
  /** The backend the workers initialise (the one this thread runs). */
  backend: BackendChoice;
  model: LlamaModel;
  /** The optimizer's trainable weights, by HF name. */
  params: ReadonlyArray<{ name: string; variable: tf.Variable }>;
  /** The LoRA adapter attached to `model`, if any. */
  lora: LoraAttachConfig | undefined;
}

export class DataParallel {
  private readonly shared: Float32Array[];
  private readonly published: Array<object | undefined>;
  private version = 0;

  private constructor(
    private readonly opts: DataParallelOptions,
    private readonly workers: GradWorker[],
    shared: Float32Array[],
  ) {
    this.shared = shared;
    this.published = opts.params.map((p) => p.variable.dataId);
  }

  /** Starts threads − 1 workers, each with a copy of the model as it is now. */
  static async start(opts: DataParallelOptions): Promise<DataParallel> {
    if (!Number.isInteger(opts.threads) || opts.threads < 2)
      throw new DataParallelError(`--threads must be an integer ≥ 2 for data parallelism, got ${opts.threads}`);
    const { model, params } = opts;
    const sharedFloat32 = (n: number) => new Float32Array(new SharedArrayBuffer(Math.max(1, n) * 4));
    const shared = params.map((p) => {
      const buf = sharedFloat32(p.variable.size);
      buf.set(p.variable.dataSync() as Float32Array);
      return buf;
    });
    const weights = model.exportWeights();
    let lora: WorkerInit['lora'];
    if (opts.lora) {
      const tensors = loraTensorsOf(model.exportLora());
      lora = {
        config: {
          r: opts.lora.r,
          loraAlpha: opts.lora.loraAlpha,
          loraDropout: opts.lora.loraDropout,
          targetModules: opts.lora.targetModules,
          targetModulesRegex: opts.lora.targetModulesRegex,
          useRslora: opts.lora.useRslora,
        },
        tensors,
      };
    }
    const workers: GradWorker[] = [];
    try {
      for (let k = 1; k < opts.threads; k++) {
        const grads = params.map((p) => sharedFloat32(p.variable.size));
        const init: WorkerInit = {
          backend: opts.backend,
          config: model.config,
          weights,
          lora,
          gradientCheckpointing: model.gradientCheckpointing,
          trainable: params.map((p, i) => ({ name: p.name, shape: [...p.variable.shape], values: shared[i]!, grad: grads[i]! })),
        };
        workers.push(new GradWorker(newWorker(init), grads));
      }
      await Promise.all(workers.map((w) => w.ready));
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    return new DataParallel(opts, workers, shared);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Copies trainable values that changed since the last publication into shared memory. */
  private publish(): void {
    let changed = false;
    this.opts.params.forEach((p, i) => {
      // tf.Variable.assign (AdamW, checkpoint restore) gives the variable a new dataId
      if (this.published[i] === p.variable.dataId) return;
      this.shared[i]!.set(readValues(p.variable));
      this.published[i] = p.variable.dataId;
      changed = true;
    });
    if (changed) this.version += 1;
  }

  /**
   * Loss and gradients of the whole micro-batch: shard 0 on this thread (dropout seeded by
   * `reseed(dropoutSeed)`), shard k on worker k with seed dropoutSeed + k.
   */
  async lossAndGrads(
    model: LossModel & { reseedDropout?(seed: number): void },
    b: Batch,
    dropoutSeed: number,
  ): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
    const shards = splitBatch(b, this.threads);
    if (shards.length <= 1) {
      model.reseedDropout?.(dropoutSeed);
      return microBatchGradients(model, this.opts.params, b);
    }
    this.publish();
    const [mine, ...theirs] = shards as [Shard, ...Shard[]];
    const remote = theirs.map((s, k) =>
      this.workers[k]!.call({ kind: 'step', batch: s.batch, dropoutSeed: (dropoutSeed + k + 1) & 0x7fffffff, version: this.version }),
    );
    // a failed worker must not leave the others' promises unobserved
    const settled = Promise.allSettled(remote);
    model.reseedDropout?.(dropoutSeed);
    let local: Awaited<ReturnType<typeof microBatchGradients>>;
    try {
      local = await microBatchGradients(model, this.opts.params, mine.batch);
    } catch (err) {
      await settled;
      throw err;
    }
    let losses: number[];
    try {
      losses = fulfilled(await settled);
    } catch (err) {
      for (const g of local.grads.values()) g.dispose();
      throw err;
    }
    let loss = mine.weight * local.loss;
    theirs.forEach((s, k) => (loss += s.weight * losses[k]!));
    const grads = new Map<string, tf.Tensor>();
    this.opts.params.forEach((p, i) => {
      const g0 = local.grads.get(p.name);
      const combined = tf.tidy(() => {
        let sum = g0 ? tf.mul(g0, mine.weight) : tf.zeros(p.variable.shape);
        theirs.forEach((s, k) => {
          sum = tf.add(sum, tf.mul(tensorFromShared(this.workers[k]!.grads[i]!, p.variable.shape), s.weight));
        });
        return sum;
      });
      g0?.dispose();
      grads.set(p.name, combined);
    });
    return { loss, grads };
  }

  /** Evaluation loss of one batch, its rows shared with the workers. */
  async loss(model: LossModel, b: Batch): Promise<number> {
    const shards = splitBatch(b, this.threads);
    if (shards.length <= 1) return microBatchLoss(model, b);
    const [mine, ...theirs] = shards as [Shard, ...Shard[]];
    this.publish();
    const pending = Promise.allSettled(theirs.map((s, k) => this.workers[k]!.call({ kind: 'eval', batch: s.batch, version: this.version })));
    const local = await microBatchLoss(model, mine.batch);
    const losses = fulfilled(await pending);
    let loss = mine.weight * local;
    theirs.forEach((s, k) => (loss += s.weight * losses[k]!));
    return loss;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
