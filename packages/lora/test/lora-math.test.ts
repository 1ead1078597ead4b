import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HFCheckpoint, saveHFCheckpoint } from '../src/hf-checkpoint.js';
import { createLlamaConfig, readLlamaConfig } from '../src/llama-config.js';
import { mulberry32 as createRng } from '@cllama/core';
import { initLoraPair, loraDelta, mergeLora, resizeRows, unmergeLora } from '../src/lora-math.js';
import { llamaWeightSpecs } from '../src/llama-weights.js';
import { mergeAdaptersIntoCheckpoint } from '../src/merge.js';
import { PeftAdapter, peftFullKey, peftLoraKeys, readPeftAdapter, writePeftAdapter } from '../src/peft.js';
import { countTrainableParameters } from '../src/trainable-params.js';
import { randomFloats, rng, tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

const golden = JSON.parse(await fs.readFile(path.join(tinyLlamaDir, 'golden.json'), 'utf8'));

let work: string;
beforeAll(async () => {
  work = await tempDir('loramath');
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

const Q0 = 'model.layers.0.self_attn.q_proj.weight';
const absSum = (x: Float32Array) => x.reduce((s, v) => s + Math.abs(v), 0);
const maxAbsDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);

async function pairFor(adapter: PeftAdapter, weight: string) {
  const { a, b, info } = await adapter.readPair(weight);
  return { a, b, r: info.aShape[0], inFeatures: info.aShape[1], outFeatures: info.bShape[0], scaling: adapter.scaling };
}

describe('merge / unmerge against golden.json', () => {
  it("merged layer-0 q_proj |sum| equals golden's lora value; unmerge restores the base within 1e-6", async () => {
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const adapter = await PeftAdapter.open(tinyLoraDir);
    const w = await base.read(Q0);
    const original = Float32Array.from(w);
    const pair = await pairFor(adapter, Q0);
    expect(pair.scaling).toBe(golden.lora.alpha / golden.lora.r);
    mergeLora(w, pair);
    const merged = absSum(w);
    expect(Math.abs(merged - golden.lora.merged_q_proj_0_abs_sum) / golden.lora.merged_q_proj_0_abs_sum).toBeLessThan(1e-5);
    expect(Math.abs(absSum(original) - golden.lora.merged_q_proj_0_abs_sum)).toBeGreaterThan(1); // the merge changed something
    unmergeLora(w, pair);
    expect(maxAbsDiff(w, original)).toBeLessThanOrEqual(1e-6);
    await Promise.all([base.close(), adapter.close()]);
  });

  it('loraDelta is scaling · B·A (checked element-wise by a naive triple loop)', () => {
    const next = rng(3);
    const p = { a: randomFloats(3 * 5, next), b: randomFloats(4 * 3, next), r: 3, inFeatures: 5, outFeatures: 4, scaling: 2.5 };
    const d = loraDelta(p);
    for (let o = 0; o < 4; o++)
      for (let i = 0; i < 5; i++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += p.b[o * 3 + k] * p.a[k * 5 + i];
        expect(d[o * 5 + i]).toBeCloseTo(s * 2.5, 6);
      }
  });
});

describe('PEFT default init', () => {
  it('A ~ U(±1/sqrt(in)) (kaiming_uniform a=√5), B = 0, reproducible from the seed', () => {
    const { a, b } = initLoraPair(256, 128, 8, createRng(7));
    const bound = 1 / Math.sqrt(256);
    expect(a.length).toBe(8 * 256);
    expect(b.length).toBe(128 * 8);
    expect(b.every((v) => v === 0)).toBe(true);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.95 * bound);
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(Math.abs(variance - bound ** 2 / 3) / (bound ** 2 / 3)).toBeLessThan(0.1); // uniform variance bound²/3
    expect(Array.from(initLoraPair(256, 128, 8, createRng(7)).a)).toEqual(Array.from(a));
    expect(Array.from(initLoraPair(256, 128, 8, createRng(8)).a)).not.toEqual(Array.from(a));
    // B = 0 ⇒ merging the fresh pair leaves the weight unchanged.
    const w = randomFloats(128 * 256, rng(1));
    const before = Float32Array.from(w);
    mergeLora(w, { a, b, r: 8, inFeatures: 256, outFeatures: 128, scaling: 2 });
    expect(Array.from(w)).toEqual(Array.from(before));
  });
});

describe('multi-adapter merge of folders', () => {
  /** A second adapter on tiny-llama (r=2, alpha=4, q/v only) with random non-zero B, written in PEFT layout. */
  async function makeSecondAdapter(dir: string, vocab?: number) {
    const config = await readLlamaConfig(tinyLlamaDir);
    const next = rng(11);
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (let l = 0; l < config.numHiddenLayers; l++) {
      for (const m of ['q_proj', 'v_proj']) {
        const keys = peftLoraKeys(`model.layers.${l}.self_attn.${m}.weight`);
        tensors.set(keys.a, { shape: [2, 64], data: randomFloats(128, next, 0.1) });
        tensors.set(keys.b, { shape: [64, 2], data: randomFloats(128, next, 0.1) });
      }
    }
    const modulesToSave: string[] = [];
    if (vocab) {
      modulesToSave.push('embed_tokens', 'lm_head');
      tensors.set(peftFullKey('model.embed_tokens.weight'), { shape: [vocab, 64], data: randomFloats(vocab * 64, next) });
      tensors.set(peftFullKey('lm_head.weight'), { shape: [vocab, 64], data: randomFloats(vocab * 64, next) });
    }
    await writePeftAdapter(
      dir,
      { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q_proj', 'v_proj'], modulesToSave, bias: 'none', fanInFanOut: false },
      tensors,
    );
    return tensors;
  }

  it('merging two adapters in sequence equals base + both deltas (≤ 1e-4); vocab growth from modules_to_save', async () => {
    const second = path.join(work, 'second');
    const secondTensors = await makeSecondAdapter(second, 520);
    await fs.writeFile(path.join(second, 'tokenizer.model'), 'fake tokenizer bytes');
    const out = path.join(work, 'merged');
    const report = await mergeAdaptersIntoCheckpoint({ baseDir: tinyLlamaDir, adapterDirs: [tinyLoraDir, second], outDir: out });
    expect(report).toMatchObject({ vocabSize: 520, loraMerged: 28 / 2 + 4, replaced: 2, tokenizerFiles: ['tokenizer.model'] });

    const base = await HFCheckpoint.open(tinyLlamaDir);
    const merged = await HFCheckpoint.open(out);
    const a1 = await PeftAdapter.open(tinyLoraDir);
    const a2 = await PeftAdapter.open(second);
    expect(merged.config.vocabSize).toBe(520);
    expect(merged.info('model.embed_tokens.weight').shape).toEqual([520, 64]);
    expect(Array.from(await merged.read('lm_head.weight'))).toEqual(Array.from(secondTensors.get(peftFullKey('lm_head.weight'))!.data));
    let worst = 0;
    for (const name of base.names()) {
      if (name.includes('embed_tokens') || name === 'lm_head.weight') continue;
      const expected = Float64Array.from(await base.read(name));
      for (const adapter of [a1, a2]) {
        if (!adapter.loraPairs.has(name)) continue;
        const d = loraDelta(await pairFor(adapter, name));
        for (let i = 0; i < d.length; i++) expected[i] += d[i];
      }
      const got = await merged.read(name);
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    }
    expect(worst).toBeLessThanOrEqual(1e-4);
    expect(worst).toBeGreaterThan(0); // float32 rounding exists; the comparison is real
    // Golden check on the folder too.
    const q0 = await merged.read(Q0);
    const q0Only1 = await base.read(Q0);
    mergeLora(q0Only1, await pairFor(a1, Q0));
    expect(Math.abs(absSum(q0Only1) - golden.lora.merged_q_proj_0_abs_sum) / golden.lora.merged_q_proj_0_abs_sum).toBeLessThan(1e-5);
    expect(maxAbsDiff(q0, q0Only1)).toBeGreaterThan(1e-3); // the second adapter contributed
    expect(await fs.readFile(path.join(out, 'tokenizer.model'), 'utf8')).toBe('fake tokenizer bytes');
    await Promise.all([base.close(), merged.close(), a1.close(), a2.close()]);
  });

  it('resizeRows appends the mean row', () => {
    const data = Float32Array.from([1, 2, 3, 5]);
    expect(Array.from(resizeRows(data, 2, 2, 3))).toEqual([1, 2, 3, 5, 2, 3.5]);
  });

  it('an adapter saving only a larger embed_tokens grows lm_head first (mean rows), then LoRA applies', async () => {
    const dir = path.join(work, 'embed-only');
    const next = rng(21);
    const { config, tensors } = await readPeftAdapter(tinyLoraDir);
    tensors.set(peftFullKey('model.embed_tokens.weight'), { shape: [530, 64], data: randomFloats(530 * 64, next) });
    await writePeftAdapter(dir, { ...config, modulesToSave: ['embed_tokens'] }, tensors);
    const out = path.join(work, 'merged-embed-only');
    const report = await mergeAdaptersIntoCheckpoint({ baseDir: tinyLlamaDir, adapterDirs: [dir], outDir: out, dtype: 'F16', maxShardBytes: 100_000 });
    expect(report.vocabSize).toBe(530);
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const merged = await HFCheckpoint.open(out);
    expect(merged.shardPaths().length).toBeGreaterThan(1);
    expect(merged.info('lm_head.weight')).toMatchObject({ dtype: 'F16', shape: [530, 64] });
    const expected = resizeRows(await base.read('lm_head.weight'), 512, 64, 530);
    expect(maxAbsDiff(await merged.read('lm_head.weight'), expected)).toBeLessThan(2e-3); // F16 rounding only
    expect(merged.config.vocabSize).toBe(530);
    await Promise.all([base.close(), merged.close()]);
  });

  it('refuses an adapter made for another model', async () => {
    const tiny = createLlamaConfig({ hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, vocabSize: 16 });
    const other = path.join(work, 'other-base');
    const next = rng(5);
    await saveHFCheckpoint(other, tiny, [
      { name: 'model.embed_tokens.weight', shape: [16, 32], data: randomFloats(512, next) },
      { name: 'model.layers.0.self_attn.q_proj.weight', shape: [32, 32], data: randomFloats(1024, next) },
    ]);
    await expect(mergeAdaptersIntoCheckpoint({ baseDir: other, adapterDirs: [tinyLoraDir], outDir: path.join(work, 'nope') })).rejects.toThrow(
      /does not have|another base model/,
    );
    await expect(fs.stat(path.join(work, 'nope'))).rejects.toThrow();
  });
});

describe('trainable parameters (PEFT print_trainable_parameters, from config alone)', () => {
  const llama7b = (vocab: number) =>
    createLlamaConfig({ hiddenSize: 4096, intermediateSize: 11008, numHiddenLayers: 32, numAttentionHeads: 32, vocabSize: vocab });
  const qkvo = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
  const allSeven = [...qkvo, 'gate_proj', 'down_proj', 'up_proj'];

  it("reproduces the seed's LLaMA-7B shares: 2.97 %, 6.06 %, 6.22 %", () => {
    const stage1 = countTrainableParameters(llama7b(49953), { trainInPlace: ['embed_tokens'] });
    const stage2 = countTrainableParameters(llama7b(49953), { lora: { r: 8, targetModules: qkvo }, modulesToSave: ['embed_tokens', 'lm_head'] });
    const sft = countTrainableParameters(llama7b(49954), { lora: { r: 8, targetModules: allSeven }, modulesToSave: ['embed_tokens', 'lm_head'] });
    expect(stage1.percent.toFixed(2)).toBe('2.97');
    expect(stage2.percent.toFixed(2)).toBe('6.06');
    expect(sft.percent.toFixed(2)).toBe('6.22');
    expect(stage1.trainable).toBe(49953 * 4096);
    expect(stage2.trainable).toBe(32 * 4 * 8 * (4096 + 4096) + 2 * 49953 * 4096);
  });

  it("with PEFT's own counting of modules_to_save copies the shares are lower", () => {
    const stage2 = countTrainableParameters(llama7b(49953), {
      lora: { r: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
      modulesToSave: ['embed_tokens', 'lm_head'],
      countModulesToSaveCopies: true,
    });
    expect(stage2.percent.toFixed(2)).toBe('5.72');
    expect(stage2.summary).toMatch(/^trainable params: 417,603,584 \|\| all params: 7,303,090,176 \|\| trainable%: 5\.7182$/);
  });

  it('weight shapes follow GQA and tying', () => {
    const gqa = createLlamaConfig({
      hiddenSize: 64,
      intermediateSize: 128,
      numHiddenLayers: 1,
      numAttentionHeads: 8,
      numKeyValueHeads: 2,
      vocabSize: 10,
      tieWordEmbeddings: true,
    });
    const specs = new Map(llamaWeightSpecs(gqa).map((w) => [w.name, w.shape]));
    expect(specs.get('model.layers.0.self_attn.k_proj.weight')).toEqual([16, 64]);
    expect(specs.get('model.layers.0.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(specs.has('lm_head.weight')).toBe(false);
    const lora = countTrainableParameters(gqa, { lora: { r: 2, targetModules: ['k_proj'] } });
    expect(lora.trainable).toBe(2 * (64 + 16));
  });

  it('counts the tiny-llama adapter exactly as its tensors', async () => {
    const config = await readLlamaConfig(tinyLlamaDir);
    const { config: lora, tensors } = await readPeftAdapter(tinyLoraDir);
    const count = countTrainableParameters(config, { lora: { r: lora.r, targetModules: lora.targetModules } });
    expect(count.trainable).toBe([...tensors.values()].reduce((s, t) => s + t.data.length, 0));
  });
});
