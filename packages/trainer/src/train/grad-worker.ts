/**
 * A data-parallel worker thread (see data-parallel.ts): it holds its own copy of the model on its own
 * tfjs backend instance and, per request, computes the loss (and gradients) of the rows it is given.
 *
 *   init   ← config, every weight, the LoRA adapter, the trainable names, shared buffers
 *   step   ← rows + dropout seed (+ weights version) → loss; gradients written into shared buffers
 *   eval   ← rows → loss
 *
 * Trainable weights are read from shared buffers whenever the main thread's version is newer than
 * ours (the main thread runs the optimizer and publishes the updated values after each step).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '../backend.js';
import { LlamaModel } from '../model/llama.js';
import type { LoraAttachConfig, LoraTensor } from '../model/lora-layers.js';
import type { LlamaConfig } from '../model/config.js';
import { microBatchGradients, microBatchLoss, readValues, tensorFromShared, type Batch } from './micro-batch.js';

export interface WorkerInit {
  backend: BackendChoice;
  config: LlamaConfig;
  weights: Array<{ name: string; shape: number[]; data: Float32Array }>;
  lora: { config: LoraAttachConfig; tensors: Map<string, LoraTensor> } | undefined;
  /** LlamaModel.gradientCheckpointing of the main thread's model. */
  gradientCheckpointing: boolean;
  /** Trainable weights in the optimizer's order, with the shared buffers the main thread publishes into. */
  trainable: Array<{ name: string; shape: number[]; values: Float32Array; grad: Float32Array }>;
}

export type WorkerRequest = { kind: 'step'; batch: Batch; dropoutSeed: number; version: number } | { kind: 'eval'; batch: Batch; version: number };

export type WorkerReply = { ok: true; loss: number } | { ok: false; error: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('grad-worker.js runs as a worker thread of @cllama/trainer, not on its own');
  const init = workerData as WorkerInit;
  await initBackend(init.backend);
  const model = new LlamaModel(init.config, init.weights);
  init.weights.length = 0;
  if (init.lora) model.attachLora(init.lora.config, init.lora.tensors);
  const trainableNames = new Set(init.trainable.map((t) => t.name));
  model.setTrainable((n) => trainableNames.has(n));
  model.gradientCheckpointing = init.gradientCheckpointing;
  const all = model.namedVariables();
  const params = init.trainable.map((t) => {
    const variable = all.get(t.name);
    if (!variable) throw new Error(`the worker's model has no weight '${t.name}'`);
    return { name: t.name, variable, shared: t };
  });
  let version = 0;

  // requests come one at a time: the main thread awaits each reply before the next request
  port.on('message', async (req: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      if (req.version > version) {
        // the main thread stepped the optimizer (or restored a checkpoint): copy the new trainable values in
        for (const p of params) tf.tidy(() => p.variable.assign(tensorFromShared(p.shared.values, p.shared.shape)));
        version = req.version;
      }
      if (req.kind === 'eval') {
        model.train(false);
        reply = { ok: true, loss: await microBatchLoss(model, req.batch) };
      } else {
        model.train(true);
        model.reseedDropout(req.dropoutSeed);
        const { loss, grads } = await microBatchGradients(model, params, req.batch);
        for (const p of params) {
          const g = grads.get(p.name);
          if (g) p.shared.grad.set(readValues(g));
          else p.shared.grad.fill(0);
        }
        for (const g of grads.values()) g.dispose();
        reply = { ok: true, loss };
      }
    } catch (err) {
      reply = { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    port.postMessage(reply);
  });
  port.postMessage({ ok: true, loss: 0 } satisfies WorkerReply);
}

main().catch((err: unknown) => {
  parentPort?.postMessage({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply);
});
