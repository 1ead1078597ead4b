import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderExistsError } from '@cllama/core';
import { CheckpointError, HFCheckpoint, INDEX_FILE_NAME, saveHFCheckpoint, shardFileName } from '../src/hf-checkpoint.js';
import { createLlamaConfig, LlamaConfigError, parseLlamaConfig, readLlamaConfig, serializeLlamaConfig } from '../src/llama-config.js';
import { floatToHalfBits, halfBitsToFloat } from '../src/half-float.js';
import { SafetensorsError, readSafetensorsHeader } from '../src/safetensors.js';
import { tempDir, tinyLlamaDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('hfckpt');
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function* streamAll(ckpt: HFCheckpoint) {
  for (const name of ckpt.names()) yield { name, shape: ckpt.info(name).shape, data: await ckpt.read(name) };
}

async function expectSameTensors(a: HFCheckpoint, b: HFCheckpoint): Promise<void> {
  expect([...b.names()].sort()).toEqual([...a.names()].sort());
  for (const name of a.names()) {
    expect(b.info(name).shape).toEqual(a.info(name).shape);
    const x = await a.read(name);
    const y = await b.read(name);
    expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength))).toBe(true);
  }
}

describe('LlamaConfig', () => {
  it('reads tiny-llama config.json', async () => {
    const c = await readLlamaConfig(tinyLlamaDir);
    expect(c).toMatchObject({
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 4,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      vocabSize: 512,
      maxPositionEmbeddings: 256,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: 0,
    });
    expect(c.raw.torch_dtype).toBe('float32');
  });

  it('defaults num_key_value_heads and tie_word_embeddings; accepts linear rope scaling in both spellings', () => {
    const base = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 8, vocab_size: 10 };
    const c = parseLlamaConfig(base);
    expect(c.numKeyValueHeads).toBe(8);
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.padTokenId).toBeUndefined();
    expect(parseLlamaConfig({ ...base, num_key_value_heads: 2 }).numKeyValueHeads).toBe(2);
    expect(parseLlamaConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).toEqual({ type: 'linear', factor: 2 });
    expect(parseLlamaConfig({ ...base, rope_scaling: { rope_type: 'linear', factor: 4 } }).ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect(parseLlamaConfig({ ...base, eos_token_id: [2, 7] }).eosTokenId).toBe(2);
  });

  it('rejects unsupported or inconsistent configs with a clear message', () => {
    const base = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 8, vocab_size: 10 };
    expect(() => parseLlamaConfig({ ...base, rope_scaling: { type: 'dynamic', factor: 2 } })).toThrow(/"dynamic".*only 'linear'/);
    expect(() => parseLlamaConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(LlamaConfigError);
    expect(() => parseLlamaConfig({ ...base, num_key_value_heads: 3 })).toThrow(/multiple of num_key_value_heads/);
    expect(() => parseLlamaConfig({ ...base, hidden_size: 30 })).toThrow(/not divisible/);
    expect(() => parseLlamaConfig({ ...base, vocab_size: undefined })).toThrow(/missing required field 'vocab_size'/);
    expect(() => parseLlamaConfig({ ...base, model_type: 'gpt2' })).toThrow(/only LLaMA/);
    expect(() => parseLlamaConfig({ ...base, tie_word_embeddings: 'yes' })).toThrow(/true or false/);
  });

  it('writes back sorted like transformers, keeping unknown keys and edited fields', async () => {
    const c = await readLlamaConfig(tinyLlamaDir);
    const edited = { ...c, vocabSize: 600, raw: { ...c.raw, custom_key: [1, 2] } };
    const text = serializeLlamaConfig(edited);
    expect(text.endsWith('}\n')).toBe(true);
    const json = JSON.parse(text);
    expect(Object.keys(json)).toEqual([...Object.keys(json)].sort());
    expect(json.vocab_size).toBe(600);
    expect(json.custom_key).toEqual([1, 2]);
    expect(json.torch_dtype).toBe('float32');
    const again = parseLlamaConfig(json);
    expect({ ...again, raw: undefined }).toEqual({ ...edited, raw: undefined });
  });
});

describe('HFCheckpoint', () => {
  it('opens tiny-llama and reads tensors', async () => {
    const ckpt = await HFCheckpoint.open(tinyLlamaDir);
    expect(ckpt.config.hiddenSize).toBe(64);
    expect(ckpt.names().length).toBe(21);
    expect(ckpt.info('model.embed_tokens.weight').shape).toEqual([512, 64]);
    expect((await ckpt.read('model.norm.weight')).length).toBe(64);
    await expect(ckpt.read('missing.weight')).rejects.toThrow(CheckpointError);
    await ckpt.close();
  });

  it('save → load round trip is exact (one file)', async () => {
    const src = await HFCheckpoint.open(tinyLlamaDir);
    const out = path.join(work, 'single');
    await saveHFCheckpoint(out, src.config, streamAll(src));
    expect((await fs.readdir(out)).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = await HFCheckpoint.open(out);
    await expectSameTensors(src, back);
    expect({ ...back.config, raw: undefined }).toEqual({ ...src.config, raw: undefined });
    await Promise.all([src.close(), back.close()]);
  });

  it('a folder saved as 3 shards has HF names and index and loads back identically', async () => {
    const src = await HFCheckpoint.open(tinyLlamaDir);
    const out = path.join(work, 'sharded');
    // 658,688 bytes of F32 data; 256 KB shards give exactly three (the first tensors are 128 KB each).
    await saveHFCheckpoint(out, src.config, streamAll(src), { maxShardBytes: 256 * 1024 + 1 });
    const files = (await fs.readdir(out)).sort();
    expect(files).toEqual(['config.json', shardFileName(1, 3), shardFileName(2, 3), shardFileName(3, 3), INDEX_FILE_NAME].sort());
    expect(shardFileName(2, 3)).toBe('model-00002-of-00003.safetensors');
    const index = JSON.parse(await fs.readFile(path.join(out, INDEX_FILE_NAME), 'utf8'));
    expect(index.metadata.total_size).toBe(658688);
    expect(Object.keys(index.weight_map)).toEqual([...src.names()].sort());
    let shardBytes = 0;
    for (let k = 1; k <= 3; k++) {
      const h = await readSafetensorsHeader(path.join(out, shardFileName(k, 3)));
      expect(h.metadata).toEqual({ format: 'pt' });
      shardBytes += h.fileSize - h.dataStart;
      for (const t of h.tensors) expect(index.weight_map[t.name]).toBe(shardFileName(k, 3));
    }
    expect(shardBytes).toBe(658688);
    const back = await HFCheckpoint.open(out);
    expect(back.shardPaths().length).toBe(3);
    await expectSameTensors(src, back);
    await Promise.all([src.close(), back.close()]);
  });

  it('with a layout given up front, the files are byte-identical to the two-pass path; mismatches are refused', async () => {
    const src = await HFCheckpoint.open(tinyLlamaDir);
    const layout = src.names().map((name) => ({ name, shape: src.info(name).shape }));
    for (const [tag, maxShardBytes] of [
      ['one', undefined],
      ['sharded', 100_000],
    ] as const) {
      const twoPass = path.join(work, `two-pass-${tag}`);
      const onePass = path.join(work, `one-pass-${tag}`);
      await saveHFCheckpoint(twoPass, src.config, streamAll(src), { maxShardBytes, dtype: 'F16' });
      await saveHFCheckpoint(onePass, src.config, streamAll(src), { maxShardBytes, dtype: 'F16', layout });
      const files = (await fs.readdir(twoPass)).sort();
      expect((await fs.readdir(onePass)).sort()).toEqual(files);
      if (tag === 'one') expect(files).toEqual(['config.json', 'model.safetensors']);
      else expect(files.length).toBeGreaterThan(4); // config + index + ≥ 3 shards
      for (const f of files) expect((await fs.readFile(path.join(onePass, f))).equals(await fs.readFile(path.join(twoPass, f)))).toBe(true);
    }
    const wrongShape = layout.map((e, i) => (i === 3 ? { ...e, shape: [1, 2] } : e));
    await expect(saveHFCheckpoint(path.join(work, 'bad-layout'), src.config, streamAll(src), { layout: wrongShape })).rejects.toThrow(
      /where the layout expects/,
    );
    await expect(saveHFCheckpoint(path.join(work, 'short-layout'), src.config, streamAll(src), { layout: layout.slice(0, 5) })).rejects.toThrow(
      /where the layout expects no more|not in the layout/,
    );
    await expect(fs.stat(path.join(work, 'bad-layout'))).rejects.toThrow();
    expect((await fs.readdir(work)).filter((f) => f.startsWith('.'))).toEqual([]);
    await src.close();
  });

  it('saves F16 (values rounded to nearest even) and reads back as float32', async () => {
    const src = await HFCheckpoint.open(tinyLlamaDir);
    const out = path.join(work, 'half');
    await saveHFCheckpoint(out, src.config, streamAll(src), { dtype: 'F16' });
    const back = await HFCheckpoint.open(out);
    expect(back.info('lm_head.weight').dtype).toBe('F16');
    const a = await src.read('lm_head.weight');
    const b = await back.read('lm_head.weight');
    for (let i = 0; i < a.length; i += 97) expect(b[i]).toBe(halfBitsToFloat(floatToHalfBits(a[i])));
    await Promise.all([src.close(), back.close()]);
  });

  it('is atomic: refuses to clobber, overwrites when told, leaves nothing on failure', async () => {
    const config = createLlamaConfig({ hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, vocabSize: 4 });
    const t = [{ name: 'model.norm.weight', shape: [8], data: new Float32Array(8).fill(1) }];
    const out = path.join(work, 'atomic');
    await saveHFCheckpoint(out, config, t);
    await expect(saveHFCheckpoint(out, config, t)).rejects.toBeInstanceOf(FolderExistsError);
    await saveHFCheckpoint(out, config, [{ ...t[0], data: new Float32Array(8).fill(2) }], { force: true });
    const back = await HFCheckpoint.open(out);
    expect(Array.from(await back.read('model.norm.weight'))).toEqual(new Array(8).fill(2));
    await back.close();

    async function* failing() {
      yield t[0];
      throw new Error('disk on fire');
    }
    const failed = path.join(work, 'failed');
    await expect(saveHFCheckpoint(failed, config, failing())).rejects.toThrow('disk on fire');
    await expect(fs.stat(failed)).rejects.toThrow();
    expect((await fs.readdir(work)).filter((f) => f.startsWith('.'))).toEqual([]);
    // An empty existing folder is fine to fill.
    const empty = path.join(work, 'empty');
    await fs.mkdir(empty);
    await saveHFCheckpoint(empty, config, t);
    expect((await fs.readdir(empty)).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('gives clear errors for pickles, missing index, index/shard disagreement, missing shards', async () => {
    const config = await fs.readFile(path.join(tinyLlamaDir, 'config.json'));
    const mk = async (name: string, files: Record<string, string | Buffer>) => {
      const dir = path.join(work, name);
      await fs.mkdir(dir, { recursive: true });
      for (const [f, c] of Object.entries(files)) await fs.writeFile(path.join(dir, f), c);
      return dir;
    };
    const pickle = await mk('pickle', { 'config.json': config, 'pytorch_model.bin': 'PK\x03\x04' });
    await expect(HFCheckpoint.open(pickle)).rejects.toThrow(/pickled PyTorch weights \(pytorch_model\.bin\).*Convert them to safetensors/);
    await expect(HFCheckpoint.open(path.join(work, 'nope'))).rejects.toThrow(/not found/);
    await expect(HFCheckpoint.open(await mk('empty-model', { 'config.json': config }))).rejects.toThrow(/no model\.safetensors/);

    // Build a real 3-shard folder, then break it in different ways.
    const src = await HFCheckpoint.open(tinyLlamaDir);
    const good = path.join(work, 'good-sharded');
    await saveHFCheckpoint(good, src.config, streamAll(src), { maxShardBytes: 256 * 1024 + 1 });
    await src.close();
    const copy = async (name: string) => {
      const dir = path.join(work, name);
      await fs.cp(good, dir, { recursive: true });
      return dir;
    };
    const noIndex = await copy('no-index');
    await fs.rm(path.join(noIndex, INDEX_FILE_NAME));
    await expect(HFCheckpoint.open(noIndex)).rejects.toThrow(/no model\.safetensors\.index\.json/);

    const missing = await copy('missing-shard');
    await fs.rm(path.join(missing, shardFileName(2, 3)));
    await expect(HFCheckpoint.open(missing)).rejects.toThrow(/model-00002-of-00003\.safetensors, which is missing/);

    const wrong = await copy('wrong-index');
    const index = JSON.parse(await fs.readFile(path.join(wrong, INDEX_FILE_NAME), 'utf8'));
    index.weight_map['lm_head.weight'] = shardFileName(3, 3);
    await fs.writeFile(path.join(wrong, INDEX_FILE_NAME), JSON.stringify(index));
    await expect(HFCheckpoint.open(wrong)).rejects.toThrow(/disagree/);

    const corrupt = await copy('corrupt-shard');
    const shard = path.join(corrupt, shardFileName(3, 3));
    const bytes = await fs.readFile(shard);
    await fs.writeFile(shard, bytes.subarray(0, bytes.length - 10));
    await expect(HFCheckpoint.open(corrupt)).rejects.toBeInstanceOf(SafetensorsError);
  });
});
