/**
 * A tied-embedding base (Llama-3.2, SmolLM) with modules_to_save embed_tokens / lm_head, as PEFT runs
 * it: each named module gets its own copy of the shared matrix, the other keeps the base weight. Before,
 * such an adapter was refused ("no parameter 'lm_head.weight'") and a stage-2 run on a tied base could
 * not start. The same adapters against real PEFT: interop/test/adapters.test.ts.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { peftFullKey, peftLoraKeys, readPeftAdapter, writePeftAdapter, type LoraConfig } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachLoraFromDir } from '../src/model/adapter.js';
import { loadLlama } from '../src/model/io.js';
import { resolveArgs } from '../src/train/options.js';
import { runTrainingSession } from '../src/train/session.js';
import { FIXTURES, useBackend } from './helpers.js';

const TIED = path.join(FIXTURES, 'tiny-llama-tied');
const EMBED = 'model.embed_tokens.weight';
let root: string;

beforeAll(async () => {
  await useBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-tied-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function adapterWith(name: string, saved: Record<string, number>): Promise<string> {
  const base = await loadLlama(TIED);
  const embed = base.exportWeight(EMBED);
  base.dispose();
  const config: LoraConfig = {
    r: 2,
    loraAlpha: 4,
    loraDropout: 0,
    targetModules: ['q_proj'],
    modulesToSave: Object.keys(saved).map((w) => w.split('.').at(-2)!),
    bias: 'none',
    fanInFanOut: false,
  };
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const layer of [0, 1]) {
    const keys = peftLoraKeys(`model.layers.${layer}.self_attn.q_proj.weight`);
    tensors.set(keys.a, { shape: [2, 48], data: new Float32Array(96).fill(0.01) });
    tensors.set(keys.b, { shape: [48, 2], data: new Float32Array(96).fill(0.02) });
  }
  for (const [weight, shift] of Object.entries(saved)) tensors.set(peftFullKey(weight), { shape: embed.shape, data: embed.data.map((x) => x + shift) });
  const dir = path.join(root, name);
  await writePeftAdapter(dir, config, tensors);
  return dir;
}

describe('tied base + saved embed_tokens / lm_head (PEFT semantics)', () => {
  for (const [name, saved] of [
    ['both', { [EMBED]: 0.5, 'lm_head.weight': -0.25 }],
    ['embed only', { [EMBED]: 0.5 }],
    ['lm_head only', { 'lm_head.weight': -0.25 }],
  ] as const) {
    it(`${name}: untied, each module its saved copy, the other the base matrix`, async () => {
      const dir = await adapterWith(name.replace(/\W+/g, '-'), saved);
      const model = await loadLlama(TIED);
      const original = model.exportWeight(EMBED).data;
      await attachLoraFromDir(model, dir);
      expect(model.config.tieWordEmbeddings).toBe(false);
      const embed = model.exportWeight(EMBED).data;
      const head = model.exportWeight('lm_head.weight').data;
      expect(embed[3]).toBeCloseTo(original[3]! + ((saved as Record<string, number>)[EMBED] ?? 0), 6);
      expect(head[3]).toBeCloseTo(original[3]! + ((saved as Record<string, number>)['lm_head.weight'] ?? 0), 6);
      model.dispose();
    });
  }

  it('an adapter without saved embeddings leaves the model tied', async () => {
    const dir = await adapterWith('none', {});
    const model = await loadLlama(TIED);
    await attachLoraFromDir(model, dir);
    expect(model.config.tieWordEmbeddings).toBe(true);
    model.dispose();
  });

  it('stage 2 on a tied base trains embed_tokens and lm_head as two copies and saves both', async () => {
    const data = path.join(root, 'zh');
    await fs.mkdir(data);
    await fs.writeFile(path.join(data, 'zh.txt'), (await fs.readFile(path.join(FIXTURES, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 6).join('\n'));
    const out = path.join(root, 'stage2');
    const args = await resolveArgs('pretrain', {
      stage: '2',
      modelNameOrPath: TIED,
      tokenizerNameOrPath: path.join(FIXTURES, 'tokenizers/chinese_sp.model'),
      datasetDir: data,
      outputDir: out,
      blockSize: '16',
      validationSplitPercentage: '0',
      maxSteps: '2',
      learningRate: '1e-2',
      trainable: 'q_proj,v_proj',
      modulesToSave: 'embed_tokens,lm_head',
      progress: false,
    });
    await runTrainingSession(args, { backend: 'wasm' });
    const { tensors } = await readPeftAdapter(out);
    const e = tensors.get(peftFullKey(EMBED))!;
    const h = tensors.get(peftFullKey('lm_head.weight'))!;
    expect(e.shape).toEqual([20000, 48]);
    expect(h.shape).toEqual([20000, 48]);
    expect(e.data.some((x, i) => x !== h.data[i])).toBe(true); // trained apart
  });
});

describe('--dry-run on a tied base', () => {
  it('counts embed_tokens and lm_head as two trained copies when both are modules_to_save', async () => {
    const { dryRunPlan } = await import('../src/train/plan.js');
    const base = { stage: '2', modelNameOrPath: TIED, datasetDir: '/data', outputDir: '/out', trainable: 'q_proj', loraRank: '2', dryRun: true };
    const both = await dryRunPlan(await resolveArgs('pretrain', { ...base, modulesToSave: 'embed_tokens,lm_head' }));
    const none = await dryRunPlan(await resolveArgs('pretrain', { ...base, modulesToSave: '' }));
    // tiny-llama-tied: vocab 280 × hidden 48 per copy; q_proj LoRA r 2 on 2 layers: 2 × 2 × (48 + 48)
    expect(none.trainableParameters).toBe(2 * 2 * 96);
    expect(both.trainableParameters).toBe(2 * 2 * 96 + 2 * 280 * 48);
  });
});
