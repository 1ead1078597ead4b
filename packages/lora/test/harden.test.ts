/**
 * Bad inputs to `cllama-lora merge` (issue #14), through the built CLI on real safetensors folders:
 * NaN / Inf in the base or the adapter, a config.json that contradicts the weights, and an output that
 * is an input through a symlink. Each is one line on stderr, exit 1, and no output folder.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { HFCheckpoint, saveHFCheckpoint } from '../src/hf-checkpoint.js';
import { readPeftAdapter, writePeftAdapter } from '../src/peft.js';
import type { NamedTensor } from '../src/safetensors.js';
import { tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

const run = promisify(execFile);
const cli = path.resolve(__dirname, '../dist/cli.js');

async function merge(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'merge', '--quiet', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A copy of the tiny base with `edit` applied to its tensors and `configEdit` to config.json. */
async function baseVariant(dir: string, edit: (t: NamedTensor) => void = () => {}, configEdit: Record<string, unknown> = {}): Promise<void> {
  const base = await HFCheckpoint.open(tinyLlamaDir);
  const tensors: NamedTensor[] = [];
  for (const name of base.names()) {
    const t = { name, shape: base.info(name).shape, data: await base.read(name) };
    edit(t);
    tensors.push(t);
  }
  await saveHFCheckpoint(dir, base.config, tensors);
  await base.close();
  if (Object.keys(configEdit).length) {
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8'));
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...configEdit }));
  }
}

let work: string;
beforeAll(async () => {
  await fs.access(cli);
  work = await tempDir('lora-harden');
});

function expectRefused(r: { code: number; stderr: string }, pattern: RegExp) {
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('cllama-lora merge refuses non-finite weights', () => {
  it('a NaN in a base weight, naming the tensor; nothing written', async () => {
    const base = path.join(work, 'nan-base');
    await baseVariant(base, (t) => {
      if (t.name === 'model.layers.1.mlp.down_proj.weight') t.data[7] = Number.NaN;
    });
    const out = path.join(work, 'out-nan-base');
    const r = await merge('--base', base, '--lora', tinyLoraDir, '--out', out);
    expectRefused(r, /^cllama-lora: base weight 'model\.layers\.1\.mlp\.down_proj\.weight' holds a non-finite value \(NaN at element 7\)/);
    await expect(fs.access(out)).rejects.toThrow();
    expect((await fs.readdir(work)).filter((f) => f.includes('out-nan-base'))).toEqual([]);
  });

  it('an Inf in an unadapted base weight (norm) too', async () => {
    const base = path.join(work, 'inf-base');
    await baseVariant(base, (t) => {
      if (t.name === 'model.norm.weight') t.data[0] = Number.POSITIVE_INFINITY;
    });
    const r = await merge('--base', base, '--lora', tinyLoraDir, '--out', path.join(work, 'out-inf'));
    expectRefused(r, /base weight 'model\.norm\.weight' holds a non-finite value \(Infinity at element 0\)/);
  });

  it('a NaN in an adapter lora_B, naming the adapter and the weight', async () => {
    const { config, tensors } = await readPeftAdapter(tinyLoraDir);
    const key = [...tensors.keys()].find((k) => k.includes('layers.0.self_attn.v_proj.lora_B'))!;
    tensors.get(key)!.data[3] = Number.NaN;
    const adapter = path.join(work, 'nan-adapter');
    await writePeftAdapter(adapter, config, tensors);
    const out = path.join(work, 'out-nan-adapter');
    const r = await merge('--base', tinyLlamaDir, '--lora', adapter, '--out', out);
    expectRefused(r, /nan-adapter: lora_B of 'model\.layers\.0\.self_attn\.v_proj\.weight' holds a non-finite value \(NaN at element 3\)/);
    await expect(fs.access(out)).rejects.toThrow();
  });
});

describe('cllama-lora merge refuses a config that contradicts the weights', () => {
  for (const [key, value, pattern] of [
    ['num_hidden_layers', 99, /config\.json says num_hidden_layers = 99 but the weights have 2/],
    ['hidden_size', 128, /config\.json says hidden_size = 128 but the weights have 64/],
    ['vocab_size', 600, /config\.json says vocab_size = 600 but the weights have 512/],
    ['intermediate_size', 100, /config\.json says intermediate_size = 100 but the weights have 172/],
  ] as const) {
    it(`${key} = ${value}`, async () => {
      const base = path.join(work, `cfg-${key}`);
      await baseVariant(base, undefined, { [key]: value, ...(key === 'hidden_size' ? { num_attention_heads: 4 } : {}) });
      const out = path.join(work, `out-cfg-${key}`);
      const r = await merge('--base', base, '--lora', tinyLoraDir, '--out', out);
      expectRefused(r, pattern);
      await expect(fs.access(out)).rejects.toThrow();
    });
  }
});

describe('cllama-lora merge never writes over an input', () => {
  it('an --out that is a symlink to the base folder is refused, even with --overwrite', async () => {
    const base = path.join(work, 'base-copy');
    await baseVariant(base);
    const link = path.join(work, 'base-link');
    await fs.symlink(base, link);
    const before = await fs.readdir(base);
    const r = await merge('--base', base, '--lora', tinyLoraDir, '--out', link, '--overwrite');
    expectRefused(r, /--out .*base-link is also an input folder/);
    expect(await fs.readdir(base)).toEqual(before);
  });
});
