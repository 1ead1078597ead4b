/**
 * The training loop on the webgpu backend (in CI: Mesa's lavapipe) against wasm: a 20-step stage-2 run
 * (LoRA on every projection + trained embed_tokens/lm_head, dropout, AdamW, clipping, a checkpoint
 * and the final adapter written) must give wasm's step losses within 1e-3 relative. A machine without
 * a WebGPU adapter fails here with what to install (see helpers.ts), it does not skip.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalNorm } from '../src/train/gradients.js';
import { resolveArgs, type TrainArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';
import { FIXTURES, TINY_LLAMA, useBackend } from './helpers.js';

let root: string;
let textDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-webgpu-'));
  textDir = path.join(root, 'text');
  await fs.mkdir(textDir);
  await fs.copyFile(path.join(FIXTURES, 'train/zh_text.txt'), path.join(textDir, 'zh_text.txt'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function stage2(outputDir: string): Promise<TrainArgs> {
  return resolveArgs('pretrain', {
    modelNameOrPath: TINY_LLAMA,
    tokenizerNameOrPath: path.join(FIXTURES, 'tokenizers/chinese_sp.model'),
    datasetDir: textDir,
    dataCacheDir: path.join(root, 'data_cache'),
    outputDir,
    stage: '2',
    blockSize: '32',
    perDeviceTrainBatchSize: '2',
    perDeviceEvalBatchSize: '2',
    validationSplitPercentage: '5',
    seed: '11',
    maxSteps: '20',
    learningRate: '6e-3',
    loggingSteps: '5',
    saveSteps: '10',
    loraRank: '4',
    loraAlpha: '16',
    loraDropout: '0.05',
    trainable: 'q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj',
    lrSchedulerType: 'cosine',
    warmupRatio: '0.1',
    noProgress: true,
  });
}

describe('stage-2 training on webgpu', () => {
  it('20 steps give the wasm losses within 1e-3 relative, leak nothing, and write the checkpoint and adapter', async () => {
    await useBackend('wasm');
    const onWasm = await runTrainingSession(await stage2(path.join(root, 'wasm')), { backend: 'wasm' });
    await useBackend('webgpu');
    const counts: number[] = [];
    const onGpu = await runTrainingSession(await stage2(path.join(root, 'webgpu')), { backend: 'webgpu', onStep: (s) => void counts.push(s.numTensors) });
    expect(onGpu.stepLosses).toHaveLength(20);
    const worst = Math.max(...onGpu.stepLosses.map((s, i) => Math.abs(s.loss - onWasm.stepLosses[i]!.loss) / onWasm.stepLosses[i]!.loss));
    console.log(
      `stage 2, 20 steps: loss ${onWasm.stepLosses[0]!.loss.toFixed(6)} → ${onWasm.stepLosses[19]!.loss.toFixed(6)} (wasm), ${onGpu.stepLosses[0]!.loss.toFixed(6)} → ${onGpu.stepLosses[19]!.loss.toFixed(6)} (webgpu); worst relative step-loss difference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-3);
    expect(onGpu.stepLosses[19]!.loss).toBeLessThan(onGpu.stepLosses[0]!.loss); // it trains
    expect(new Set(counts).size).toBe(1); // the same number of live tensors after every step
    const files = await fs.readdir(path.join(root, 'webgpu'));
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'checkpoint-10', 'checkpoint-20', 'trainer_state.json']) expect(files).toContain(f);
  });
});

describe('webgpu limits', () => {
  it('the gradient norm over 40 tensors (more than a shader may bind) equals the float64 one', async () => {
    await useBackend('webgpu');
    const grads = new Map(Array.from({ length: 40 }, (_, i) => [`g${i}`, tf.fill([3, 5], (i % 7) * 0.25 - 0.5)] as const));
    let expected = 0;
    for (let i = 0; i < 40; i++) expected += 15 * ((i % 7) * 0.25 - 0.5) ** 2;
    expect(Math.abs((await globalNorm(grads)) - Math.sqrt(expected))).toBeLessThan(1e-5);
    tf.dispose([...grads.values()]);
  });

  it('a device error (an AddN binding more buffers than allowed) fails the next read instead of giving wrong values', async () => {
    await useBackend('webgpu');
    const xs = Array.from({ length: 40 }, (_, i) => tf.fill([4], i));
    const sum = tf.addN(xs);
    await expect(sum.data()).rejects.toThrow(/WebGPU device reported an error/);
    tf.dispose([sum, ...xs]);
  });
});
