/**
 * Faults a user meets (issue 21), through the built CLI: a full disk under `merge`, a stdout that cannot
 * be written, a FIFO where a model file should be, an adapter whose weights cover more modules than its
 * target_modules (PEFT's rule), and the memory of a merge (bounded by the largest tensor, not the model).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, promises as fs, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipTmpfsTests, withTmpfs } from '../../core/test/helpers/disk-full.js';
import { expectOneLine, literal, runBin } from '../../core/test/helpers/run-bin.js';
import { HFCheckpoint, saveHFCheckpoint } from '../src/hf-checkpoint.js';
import { parseLlamaConfig } from '../src/llama-config.js';
import { peftLoraKeys, writePeftAdapter } from '../src/peft.js';
import type { NamedTensor } from '../src/safetensors.js';
import { tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

const cli = path.resolve(__dirname, '../dist/cli.js');
const golden = JSON.parse(readFileSync(path.join(tinyLlamaDir, 'golden.json'), 'utf8'));
let work: string;

beforeAll(async () => {
  await fs.access(cli);
  work = await tempDir('lora-faults');
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

const lora = (args: string[], opts: { stdout?: number } = {}) => runBin(cli, args, { stdout: opts.stdout, timeoutMs: 60_000 });

describe('merge on a full disk (64 KiB tmpfs)', () => {
  it.skipIf(skipTmpfsTests)('exits 1 with one line naming the shard, leaves nothing, and keeps an old output folder', async () => {
    await withTmpfs(64, async (dir) => {
      const out = path.join(dir, 'merged');
      const r = lora(['merge', '--base', tinyLlamaDir, '--lora', tinyLoraDir, '--out', out, '--quiet']);
      expectOneLine(r, new RegExp(`^cllama-lora: cannot write ${literal(out)}/model\\.safetensors: no space left on device \\(ENOSPC\\)$`));
      expect(readdirSync(dir)).toEqual([]);
      await fs.mkdir(out);
      writeFileSync(path.join(out, 'config.json'), '{"old": true}');
      const again = lora(['merge', '--base', tinyLlamaDir, '--lora', tinyLoraDir, '--out', out, '--quiet', '--force']);
      expectOneLine(again, /cannot write .*merged\/model\.safetensors: no space left on device \(ENOSPC\)$/);
      expect(readdirSync(dir)).toEqual(['merged']);
      expect(readFileSync(path.join(out, 'config.json'), 'utf8')).toBe('{"old": true}');
    });
  });
});

describe('a stdout that cannot be written (> /dev/full)', () => {
  it.skipIf(!existsSync('/dev/full'))('tensors (file and folder) and info end with one line, exit 1', () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [
        ['tensors', path.join(tinyLlamaDir, 'model.safetensors')],
        ['tensors', tinyLlamaDir],
        ['info', tinyLoraDir],
      ]) {
        expectOneLine(lora(args, { stdout: full }), /^cllama-lora: cannot write to stdout: no space left on device \(ENOSPC\)$/);
      }
    } finally {
      closeSync(full);
    }
  });
});

describe('a FIFO where a file should be is refused in one line, without hanging', () => {
  it('tensors, and the model, config and adapter files of merge and info', async () => {
    const fifo = path.join(work, 'model.safetensors');
    spawnSync('mkfifo', [fifo]);
    expectOneLine(lora(['tensors', fifo]), new RegExp(`^cllama-lora: ${literal(fifo)} is a FIFO \\(named pipe\\), not a regular file`));
    // a model folder whose weights, config.json or the adapter's files are FIFOs
    for (const [folder, name, args] of [
      ['fifo-weights', 'model.safetensors', (d: string) => ['tensors', d]],
      ['fifo-config', 'config.json', (d: string) => ['merge', '--base', d, '--lora', tinyLoraDir, '--out', path.join(work, 'never')]],
      ['fifo-adapter', 'adapter_model.safetensors', (d: string) => ['info', d]],
      ['fifo-adapter-config', 'adapter_config.json', (d: string) => ['merge', '--base', tinyLlamaDir, '--lora', d, '--out', path.join(work, 'never')]],
    ] as const) {
      const d = path.join(work, folder);
      await fs.cp(name.startsWith('adapter') ? tinyLoraDir : tinyLlamaDir, d, { recursive: true });
      await fs.rm(path.join(d, name));
      spawnSync('mkfifo', [path.join(d, name)]);
      expectOneLine(lora(args(d)), new RegExp(`${literal(path.join(d, name))} is a FIFO \\(named pipe\\)`));
    }
    expect(existsSync(path.join(work, 'never'))).toBe(false);
  });
});

describe('an adapter whose weights cover more modules than its target_modules', () => {
  it('merge and info follow PEFT: only the targeted pairs count, the others are named in a warning', async () => {
    const adapter = path.join(work, 'q-only');
    await fs.cp(tinyLoraDir, adapter, { recursive: true });
    const config = JSON.parse(readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8'));
    writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify({ ...config, target_modules: ['q_proj'] }));
    const warning = new RegExp(
      `^warning: ${literal(adapter)}: adapter_model\\.safetensors holds 12 LoRA pairs \\(down_proj, gate_proj, k_proj, o_proj, up_proj, v_proj\\) for modules that adapter_config\\.json's target_modules \\["q_proj"\\] does not name; they are ignored, as PEFT ignores them`,
    );

    const info = lora(['info', adapter, '--json']);
    expect(info.code).toBe(0);
    expect(info.lines).toHaveLength(1);
    expect(info.lines[0]).toMatch(warning);
    const parsed = JSON.parse(info.stdout);
    expect(parsed).toMatchObject({ loraPairs: 2, adaptedModules: ['q_proj'] });
    expect(parsed.ignoredLoraPairs).toHaveLength(12);

    // What PEFT 0.21 does with this adapter (PeftModel.from_pretrained + merge_and_unload, checked once
    // with the real library: max difference 6e-8): q_proj of both layers merged, every other weight as
    // in the base. golden.json's merged q_proj sum comes from PEFT on the full adapter (same q_proj pair).
    const out = path.join(work, 'q-only-merged');
    const merged = lora(['merge', '--base', tinyLlamaDir, '--lora', adapter, '--out', out, '--no-progress']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.lines).toHaveLength(1);
    expect(merged.lines[0]).toMatch(warning);
    // --quiet (since issue 23: no progress AND no warnings, as on every CLI) leaves stderr empty
    const quiet = lora(['merge', '--base', tinyLlamaDir, '--lora', adapter, '--out', `${out}-quiet`, '--quiet']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(merged.stdout).toMatch(/2 LoRA merges/);
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const result = await HFCheckpoint.open(out);
    try {
      for (const name of base.names()) {
        const [b, m] = [await base.read(name), await result.read(name)];
        const same = b.every((v, i) => v === m[i]);
        expect(same, name).toBe(!name.endsWith('q_proj.weight'));
      }
      const q0 = await result.read('model.layers.0.self_attn.q_proj.weight');
      const abs = q0.reduce((s, v) => s + Math.abs(v), 0);
      expect(Math.abs(abs - golden.lora.merged_q_proj_0_abs_sum) / golden.lora.merged_q_proj_0_abs_sum).toBeLessThan(1e-5);
    } finally {
      await base.close();
      await result.close();
    }
  });
});

describe('merge memory is bounded by the largest tensor, not the model', () => {
  it('a 200 MB model merges at a peak RSS under 200 MB', async () => {
    // 16 layers of hidden 512 / MLP 1376 in float32: 12.6 MB per layer, the largest tensor 2.8 MB
    const config = parseLlamaConfig({
      model_type: 'llama',
      vocab_size: 1000,
      hidden_size: 512,
      intermediate_size: 1376,
      num_hidden_layers: 16,
      num_attention_heads: 8,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: false,
    });
    const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [1000, 512]]];
    for (let l = 0; l < 16; l++) {
      for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) shapes.push([`model.layers.${l}.self_attn.${p}.weight`, [512, 512]]);
      shapes.push([`model.layers.${l}.mlp.gate_proj.weight`, [1376, 512]], [`model.layers.${l}.mlp.up_proj.weight`, [1376, 512]]);
      shapes.push([`model.layers.${l}.mlp.down_proj.weight`, [512, 1376]]);
      shapes.push([`model.layers.${l}.input_layernorm.weight`, [512]], [`model.layers.${l}.post_attention_layernorm.weight`, [512]]);
    }
    shapes.push(['model.norm.weight', [512]], ['lm_head.weight', [1000, 512]]);
    const base = path.join(work, 'big-base');
    await saveHFCheckpoint(
      base,
      config,
      (function* (): Generator<NamedTensor> {
        for (const [name, shape] of shapes) yield { name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) };
      })(),
    );
    const tensors: NamedTensor[] = [];
    for (let l = 0; l < 16; l++) {
      const keys = peftLoraKeys(`model.layers.${l}.self_attn.q_proj.weight`);
      tensors.push({ name: keys.a, shape: [4, 512], data: new Float32Array(4 * 512).fill(0.02) });
      tensors.push({ name: keys.b, shape: [512, 4], data: new Float32Array(512 * 4).fill(0.03) });
    }
    const adapter = path.join(work, 'big-adapter');
    await writePeftAdapter(
      adapter,
      { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q_proj'], modulesToSave: [], bias: 'none', fanInFanOut: false },
      tensors,
    );
    const r = lora(['merge', '--base', base, '--lora', adapter, '--out', path.join(work, 'big-merged'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/16 LoRA merges/);
    const modelBytes = (await fs.stat(path.join(base, 'model.safetensors'))).size;
    expect(modelBytes).toBeGreaterThan(200e6);
    expect(r.peakKb * 1024).toBeLessThan(200e6);
    await fs.rm(path.join(work, 'big-merged'), { recursive: true });
    await fs.rm(base, { recursive: true });
  });
});
