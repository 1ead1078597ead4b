import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HFCheckpoint } from '../src/hf-checkpoint.js';
import { readPeftAdapter } from '../src/peft.js';
import { repoRoot, tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

const run = promisify(execFile);
const cli = path.resolve(__dirname, '../dist/cli.js');
const golden = JSON.parse(await fs.readFile(path.join(tinyLlamaDir, 'golden.json'), 'utf8'));

async function cllamaLora(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let work: string;
beforeAll(async () => {
  await fs.access(cli).catch(() => {
    throw new Error(`${cli} is missing: build the package first (npx nx run-many -t build)`);
  });
  work = await tempDir('lora-cli');
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('cllama-lora CLI', () => {
  it('--help lists the commands', async () => {
    const { code, stdout } = await cllamaLora('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/merge/);
    expect(stdout).toMatch(/info/);
  });

  it('info --json reports targets, r, alpha and parameter counts of the fixture adapter', async () => {
    const { code, stdout } = await cllamaLora('info', tinyLoraDir, '--base', tinyLlamaDir, '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout);
    const { tensors } = await readPeftAdapter(tinyLoraDir);
    const stored = [...tensors.values()].reduce((s, t) => s + t.data.length, 0);
    expect(info).toMatchObject({ r: 4, loraAlpha: 32, scaling: 8, loraPairs: 14, loraParameters: stored, savedParameters: 0 });
    expect(info.adaptedModules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    // total = base parameters (from config alone) + LoRA parameters.
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const baseParams = base.names().reduce((s, n) => s + base.info(n).shape.reduce((a, b) => a * b, 1), 0);
    await base.close();
    expect(info.trainable.total).toBe(baseParams + stored);
    const text = await cllamaLora('info', tinyLoraDir);
    expect(text.stdout).toMatch(/r \/ alpha\s+4 \/ 32/);
  });

  it('merge writes an HF folder whose layer-0 q_proj matches golden, copies the tokenizer, saves F16 on request', async () => {
    const tok = path.join(work, 'tok');
    await fs.mkdir(tok);
    await fs.copyFile(path.join(repoRoot, 'test-fixtures/tokenizers/llama_tokenizer.model'), path.join(tok, 'tokenizer.model'));
    const out = path.join(work, 'merged');
    const { code, stdout, stderr } = await cllamaLora('merge', '--base', tinyLlamaDir, '--lora', tinyLoraDir, '--tokenizer', tok, '--out', out);
    expect(stderr).toMatch(/\[21\/21\]/);
    expect(code).toBe(0);
    expect(stdout).toMatch(/14 LoRA merges/);
    expect((await fs.readdir(out)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.model']);
    const merged = await HFCheckpoint.open(out);
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const q = await merged.read('model.layers.0.self_attn.q_proj.weight');
    const abs = q.reduce((s, v) => s + Math.abs(v), 0);
    expect(Math.abs(abs - golden.lora.merged_q_proj_0_abs_sum) / golden.lora.merged_q_proj_0_abs_sum).toBeLessThan(1e-5);
    // Weights no adapter touches are copied bit for bit.
    for (const name of ['model.norm.weight', 'model.embed_tokens.weight', 'lm_head.weight']) {
      expect(Array.from(await merged.read(name))).toEqual(Array.from(await base.read(name)));
    }
    await Promise.all([merged.close(), base.close()]);

    // Refuses to clobber: one line, exit 1.
    const again = await cllamaLora('merge', '--base', tinyLlamaDir, '--lora', tinyLoraDir, '--out', out);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/exists and is not empty.*--force/);
    // --force replaces it (and the old name --overwrite still works)
    for (const flag of ['--force', '--overwrite']) {
      const forced = await cllamaLora('merge', '--base', tinyLlamaDir, '--lora', tinyLoraDir, '--out', out, flag, '--quiet');
      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe('');
    }

    const half = path.join(work, 'half');
    const f16 = await cllamaLora(
      'merge',
      '--base',
      tinyLlamaDir,
      '--lora',
      tinyLoraDir,
      '--out',
      half,
      '--save-dtype',
      'f16',
      '--max-shard-size',
      '300KB',
      '--quiet',
    );
    expect(f16.code).toBe(0);
    const h = await HFCheckpoint.open(half);
    expect(h.info('lm_head.weight').dtype).toBe('F16');
    expect(h.shardPaths().length).toBe(2); // 329,344 bytes of F16 in ≤ 300 KB shards
    await h.close();
  });

  it('tensors lists a model folder and a single file', async () => {
    const dir = await cllamaLora('tensors', tinyLlamaDir);
    expect(dir.code).toBe(0);
    const lines = dir.stdout.trim().split('\n');
    expect(lines).toHaveLength(21);
    expect(lines).toContain('model.layers.0.mlp.down_proj.weight\tF32\t[64, 172]');
    const file = await cllamaLora('tensors', path.join(tinyLoraDir, 'adapter_model.safetensors'));
    expect(file.stdout).toMatch(/base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight\tF32\t\[64, 4\]/);
    const bad = await cllamaLora('tensors', path.join(tinyLlamaDir, 'golden.json'));
    expect(bad.code).toBe(1);
  });

  it('a pickled adapter folder fails with one clear line', async () => {
    const dir = path.join(work, 'pickled');
    await fs.mkdir(dir);
    await fs.copyFile(path.join(tinyLoraDir, 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
    await fs.writeFile(path.join(dir, 'adapter_model.bin'), 'x');
    const r = await cllamaLora('merge', '--base', tinyLlamaDir, '--lora', dir, '--out', path.join(work, 'never'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Convert them to safetensors/);
    await expect(fs.stat(path.join(work, 'never'))).rejects.toThrow();
  });
});
