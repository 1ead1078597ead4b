/**
 * Fuzz (issue #14), seeded and bounded: safetensors headers and files, the shard index of a sharded
 * folder, and PEFT adapter_config.json, under random truncations, byte flips and hostile values. Every
 * outcome is a parsed value or one of this package's own errors (SafetensorsError, CheckpointError,
 * LlamaConfigError, PeftError) on one line — never a TypeError / RangeError / SyntaxError, never a hang —
 * and reading writes nothing.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, HFCheckpoint, INDEX_FILE_NAME, saveHFCheckpoint } from '../src/hf-checkpoint.js';
import { LlamaConfigError } from '../src/llama-config.js';
import { matchesTargetModule } from '../src/lora-target.js';
import { PeftAdapter, PeftError, loraTargets, parseLoraConfig } from '../src/peft.js';
import { SafetensorsError, SafetensorsFile, parseSafetensorsHeader, type NamedTensor } from '../src/safetensors.js';
import { rng, tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

const OWN = [SafetensorsError, CheckpointError, LlamaConfigError, PeftError];
function expectOwn(err: unknown, i: number): void {
  if (!OWN.some((C) => err instanceof C)) throw new Error(`case ${i}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
  expect((err as Error).message.split('\n'), (err as Error).message).toHaveLength(1);
}

function mutate(src: Uint8Array, next: () => number): Uint8Array {
  const kind = next();
  const out = Uint8Array.from(src);
  if (kind < 0.3) return out.subarray(0, Math.floor(next() * out.length));
  const flips = 1 + Math.floor(next() * 6);
  for (let i = 0; i < flips; i++) out[Math.floor(next() * out.length)] = Math.floor(next() * 256);
  return kind > 0.85 ? out.subarray(0, Math.floor(next() * out.length)) : out;
}

const listing = async (dir: string) => (await fs.readdir(dir)).sort();

describe('fuzz: safetensors', () => {
  it('400 mutated headers: parsed or a SafetensorsError', async () => {
    const bytes = new Uint8Array(await fs.readFile(path.join(tinyLlamaDir, 'model.safetensors')));
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = bytes.subarray(8, 8 + headerLength);
    const next = rng(1401);
    const t0 = Date.now();
    let parsed = 0;
    for (let i = 0; i < 400; i++) {
      const h = mutate(header, next);
      const size = next() < 0.2 ? Math.floor(next() * bytes.length) : bytes.length - headerLength + h.length;
      try {
        parseSafetensorsHeader(h, size, `case-${i}`);
        parsed++;
      } catch (err) {
        expectOwn(err, i);
      }
    }
    expect(parsed).toBeLessThan(400);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('60 mutated files (length prefix included): opened and read whole, or a SafetensorsError; nothing written', async () => {
    const src = new Uint8Array(await fs.readFile(path.join(tinyLoraDir, 'adapter_model.safetensors')));
    const dir = await tempDir('st-fuzz');
    const next = rng(1402);
    for (let i = 0; i < 60; i++) {
      // half the flips go into the 8-byte length and the header
      const m = next() < 0.5 ? Uint8Array.from(src) : mutate(src, next);
      if (m.length === src.length) for (let k = 0; k < 3; k++) m[Math.floor(next() * Math.min(m.length, 400))] = Math.floor(next() * 256);
      const file = path.join(dir, `f${i}.safetensors`);
      await fs.writeFile(file, m);
      const before = await listing(dir);
      try {
        const f = await SafetensorsFile.open(file);
        try {
          for (const n of f.names()) await f.read(n);
        } finally {
          await f.close();
        }
      } catch (err) {
        expectOwn(err, i);
      }
      expect(await listing(dir)).toEqual(before);
    }
  });
});

describe('fuzz: shard index', () => {
  let sharded: string;
  beforeAll(async () => {
    sharded = path.join(await tempDir('shard-fuzz'), 'model');
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const tensors: NamedTensor[] = [];
    for (const n of base.names()) tensors.push({ name: n, shape: base.info(n).shape, data: await base.read(n) });
    await saveHFCheckpoint(sharded, base.config, tensors, { maxShardBytes: 200_000 });
    await base.close();
  });

  it('150 mutated model.safetensors.index.json: opened (every tensor readable) or a CheckpointError; nothing written', async () => {
    const indexPath = path.join(sharded, INDEX_FILE_NAME);
    const original = new Uint8Array(await fs.readFile(indexPath));
    expect((await listing(sharded)).filter((f) => f.startsWith('model-')).length).toBeGreaterThan(1);
    const next = rng(1403);
    const t0 = Date.now();
    const before = await listing(sharded);
    for (let i = 0; i < 150; i++) {
      await fs.writeFile(indexPath, mutate(original, next));
      try {
        const ck = await HFCheckpoint.open(sharded);
        try {
          for (const n of ck.names()) await ck.read(n);
        } finally {
          await ck.close();
        }
      } catch (err) {
        expectOwn(err, i);
      }
      expect(await listing(sharded)).toEqual(before);
    }
    await fs.writeFile(indexPath, original);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('fuzz: PEFT adapter_config.json', () => {
  const HOSTILE: unknown[] = [
    null,
    -1,
    0,
    1.5,
    1e308,
    Number.MAX_SAFE_INTEGER + 2,
    '',
    'x',
    '(',
    '[a-',
    '*',
    [],
    [1],
    ['q_proj', 3],
    {},
    { a: 1 },
    true,
    false,
  ];

  it('300 configs with hostile values or mutated text: a config (whose targets match without throwing) or a PeftError', async () => {
    const text = await fs.readFile(path.join(tinyLoraDir, 'adapter_config.json'), 'utf8');
    const original = JSON.parse(text) as Record<string, unknown>;
    const keys = [...Object.keys(original), 'target_modules', 'modules_to_save', 'use_rslora', 'rank_pattern', 'layers_to_transform'];
    const next = rng(1404);
    const t0 = Date.now();
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      let value: unknown;
      if (i % 3 === 0) {
        const bytes = mutate(new TextEncoder().encode(text), next);
        try {
          value = JSON.parse(new TextDecoder().decode(bytes));
        } catch {
          continue; // unparseable JSON: PeftAdapter.open's own error (covered below)
        }
      } else {
        const c: Record<string, unknown> = { ...original };
        for (let k = 0; k < 1 + Math.floor(next() * 3); k++) c[keys[Math.floor(next() * keys.length)]!] = HOSTILE[Math.floor(next() * HOSTILE.length)];
        value = c;
      }
      try {
        const config = parseLoraConfig(value, `case-${i}`);
        matchesTargetModule('model.layers.0.self_attn.q_proj', loraTargets(config));
        accepted++;
      } catch (err) {
        expectOwn(err, i);
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('40 adapter folders with mutated config text: opened or a PeftError / SafetensorsError; nothing written', async () => {
    const dir = await tempDir('peft-fuzz');
    const text = new TextEncoder().encode(await fs.readFile(path.join(tinyLoraDir, 'adapter_config.json'), 'utf8'));
    const next = rng(1405);
    for (let i = 0; i < 40; i++) {
      const a = path.join(dir, `a${i}`);
      await fs.mkdir(a);
      await fs.writeFile(path.join(a, 'adapter_config.json'), mutate(text, next));
      await fs.copyFile(path.join(tinyLoraDir, 'adapter_model.safetensors'), path.join(a, 'adapter_model.safetensors'));
      try {
        const adapter = await PeftAdapter.open(a);
        await adapter.close();
      } catch (err) {
        expectOwn(err, i);
      }
      expect(await listing(a)).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    }
  });
});
