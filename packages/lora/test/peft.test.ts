import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HFCheckpoint } from '../src/hf-checkpoint.js';
import { readLlamaConfig } from '../src/llama-config.js';
import { llamaWeightSpecs } from '../src/llama-weights.js';
import { matchesModulesToSave, matchesTargetModule } from '../src/lora-target.js';
import {
  ADAPTER_CONFIG_NAME,
  ADAPTER_WEIGHTS_NAME,
  PeftAdapter,
  PeftError,
  loraConfigToJson,
  parseLoraConfig,
  parsePeftKey,
  peftFullKey,
  peftLoraKeys,
  readPeftAdapter,
  writePeftAdapter,
} from '../src/peft.js';
import { tempDir, tinyLlamaDir, tinyLoraDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('peft');
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('PEFT adapter format', () => {
  it('reads the tiny-llama adapter: config fields and PEFT key names', async () => {
    const { config, tensors } = await readPeftAdapter(tinyLoraDir);
    expect(config).toMatchObject({
      r: 4,
      loraAlpha: 32,
      loraDropout: 0.05,
      targetModules: ['q_proj', 'v_proj', 'k_proj', 'o_proj', 'gate_proj', 'down_proj', 'up_proj'],
      modulesToSave: [],
      bias: 'none',
      fanInFanOut: false,
      baseModelNameOrPath: '.',
      inferenceMode: true,
    });
    expect(tensors.size).toBe(28);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 64]);
    expect(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')!.shape).toEqual([64, 4]);
    // Exactly the pairs PEFT creates for these target_modules on this model.
    const model = await readLlamaConfig(tinyLlamaDir);
    const expected = llamaWeightSpecs(model)
      .filter((w) => w.linear && matchesTargetModule(w.name, config.targetModules))
      .flatMap((w) => Object.values(peftLoraKeys(w.name)));
    expect([...tensors.keys()].sort()).toEqual(expected.sort());
  });

  it('writes an adapter that reloads identically with exactly PEFT keys and config fields', async () => {
    const original = await readPeftAdapter(tinyLoraDir);
    const out = path.join(work, 'copy');
    await writePeftAdapter(out, original.config, original.tensors);
    expect((await fs.readdir(out)).sort()).toEqual([ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]);
    const fixtureJson = JSON.parse(await fs.readFile(path.join(tinyLoraDir, ADAPTER_CONFIG_NAME), 'utf8'));
    const writtenJson = JSON.parse(await fs.readFile(path.join(out, ADAPTER_CONFIG_NAME), 'utf8'));
    expect(writtenJson).toEqual(fixtureJson);
    expect(Object.keys(writtenJson)).toEqual([...Object.keys(writtenJson)].sort());
    const back = await readPeftAdapter(out);
    expect(back.config).toEqual(original.config);
    expect([...back.tensors.keys()].sort()).toEqual([...original.tensors.keys()].sort());
    for (const [key, t] of original.tensors) {
      expect(back.tensors.get(key)!.shape).toEqual(t.shape);
      expect(Array.from(back.tensors.get(key)!.data)).toEqual(Array.from(t.data));
    }
  });

  it('keeps unknown config keys and modules_to_save; maps keys both ways', () => {
    const json = {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 8,
      lora_alpha: 32,
      lora_dropout: 0.05,
      target_modules: 'model\\.layers\\.\\d+\\.self_attn\\.(q|v)_proj',
      modules_to_save: ['embed_tokens', 'lm_head'],
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: false,
      base_model_name_or_path: 'llama-7b',
      init_lora_weights: true,
      revision: null,
    };
    const c = parseLoraConfig(json);
    expect(c.targetModulesRegex).toBe(json.target_modules);
    expect(c.modulesToSave).toEqual(['embed_tokens', 'lm_head']);
    expect(c.extra).toEqual({ init_lora_weights: true, revision: null });
    expect(loraConfigToJson(c)).toEqual(json);

    expect(peftLoraKeys('model.layers.3.mlp.up_proj.weight')).toEqual({
      a: 'base_model.model.model.layers.3.mlp.up_proj.lora_A.weight',
      b: 'base_model.model.model.layers.3.mlp.up_proj.lora_B.weight',
    });
    expect(peftFullKey('model.embed_tokens.weight')).toBe('base_model.model.model.embed_tokens.weight');
    expect(peftFullKey('lm_head.weight')).toBe('base_model.model.lm_head.weight');
    expect(parsePeftKey('base_model.model.lm_head.weight')).toEqual({ kind: 'full', weightName: 'lm_head.weight' });
    expect(parsePeftKey('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')).toEqual({
      kind: 'lora_B',
      weightName: 'model.layers.0.self_attn.q_proj.weight',
    });
    expect(parsePeftKey('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight')).toEqual({
      kind: 'lora_A',
      weightName: 'model.layers.0.self_attn.q_proj.weight',
    });
    expect(parsePeftKey('base_model.model.model.embed_tokens.modules_to_save.default.weight')).toEqual({
      kind: 'full',
      weightName: 'model.embed_tokens.weight',
    });
    expect(() => parsePeftKey('model.layers.0.self_attn.q_proj.weight')).toThrow(PeftError);
  });

  it('rejects configs it cannot honour', () => {
    const ok = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, target_modules: ['q_proj'] };
    expect(() => parseLoraConfig({ ...ok, peft_type: 'PREFIX_TUNING' })).toThrow(/only LoRA/);
    expect(() => parseLoraConfig({ ...ok, task_type: 'SEQ_CLS' })).toThrow(/CAUSAL_LM/);
    expect(() => parseLoraConfig({ ...ok, r: 0 })).toThrow(/positive integer/);
    expect(() => parseLoraConfig({ ...ok, bias: 'all' })).toThrow(/only "none"/);
    expect(() => parseLoraConfig({ ...ok, fan_in_fan_out: true })).toThrow(/Conv1D/);
    expect(() => parseLoraConfig({ ...ok, use_dora: true })).toThrow(/DoRA/);
    expect(() => parseLoraConfig({ ...ok, rank_pattern: { q_proj: 4 } })).toThrow(/rank_pattern/);
    expect(() => parseLoraConfig({ ...ok, target_modules: undefined })).toThrow(/target_modules is missing/);
  });

  it('an adapter folder with only adapter_model.bin gets a convert-to-safetensors error, never unpickled', async () => {
    const dir = path.join(work, 'pickled');
    await fs.mkdir(dir);
    await fs.copyFile(path.join(tinyLoraDir, ADAPTER_CONFIG_NAME), path.join(dir, ADAPTER_CONFIG_NAME));
    await fs.writeFile(path.join(dir, 'adapter_model.bin'), 'not really a pickle');
    await expect(PeftAdapter.open(dir)).rejects.toThrow(/only pickled PyTorch weights \(adapter_model\.bin\).*Convert them to safetensors/);
    await expect(PeftAdapter.open(path.join(work, 'absent'))).rejects.toThrow(/not found/);
    const noConfig = path.join(work, 'no-config');
    await fs.mkdir(noConfig);
    await fs.copyFile(path.join(tinyLoraDir, ADAPTER_WEIGHTS_NAME), path.join(noConfig, ADAPTER_WEIGHTS_NAME));
    await expect(PeftAdapter.open(noConfig)).rejects.toThrow(/no adapter_config\.json/);
  });

  it('rejects a rank that disagrees with r and a half pair', async () => {
    const { config, tensors } = await readPeftAdapter(tinyLoraDir);
    await expect(writePeftAdapter(path.join(work, 'bad-r'), { ...config, r: 8 }, tensors)).rejects.toThrow(/rank 4 but r = 8/);
    const half = new Map([...tensors].filter(([k]) => !k.endsWith('layers.1.mlp.up_proj.lora_B.weight')));
    const dir = path.join(work, 'half-pair');
    await writePeftAdapter(dir, config, half);
    await expect(PeftAdapter.open(dir)).rejects.toThrow(/has lora_A but no lora_B/);
  });
});

describe('target matching (PEFT rules)', () => {
  it('list form: exact or dot-suffix match', () => {
    expect(matchesTargetModule('model.layers.0.self_attn.q_proj.weight', ['q_proj'])).toBe(true);
    expect(matchesTargetModule('model.layers.0.self_attn.q_proj', ['self_attn.q_proj'])).toBe(true);
    expect(matchesTargetModule('model.layers.0.self_attn.q_proj.weight', ['proj'])).toBe(false);
    expect(matchesTargetModule('model.layers.0.self_attn.q_proj.weight', ['k_proj', 'v_proj'])).toBe(false);
    expect(matchesTargetModule('lm_head.weight', ['lm_head'])).toBe(true);
  });
  it('string form: full regex match', () => {
    const re = 'model\\.layers\\.(0|1)\\.self_attn\\.(q|v)_proj';
    expect(matchesTargetModule('model.layers.1.self_attn.v_proj.weight', re)).toBe(true);
    expect(matchesTargetModule('model.layers.2.self_attn.v_proj.weight', re)).toBe(false);
    expect(matchesTargetModule('model.layers.1.self_attn.v_proj.weight', 'q_proj|v_proj')).toBe(false); // not a full match
    expect(matchesTargetModule('model.layers.1.self_attn.v_proj.weight', '.*(q_proj|v_proj)')).toBe(true);
  });
  it('all-linear skips lm_head; modules_to_save uses plain endswith', () => {
    expect(matchesTargetModule('model.layers.0.mlp.down_proj.weight', 'all-linear')).toBe(true);
    expect(matchesTargetModule('lm_head.weight', ['all-linear'])).toBe(false);
    expect(matchesTargetModule('model.norm.weight', 'all-linear')).toBe(false);
    expect(matchesModulesToSave('model.embed_tokens.weight', ['embed_tokens'])).toBe(true);
    expect(matchesModulesToSave('lm_head.weight', ['embed_tokens', 'lm_head'])).toBe(true);
    expect(matchesModulesToSave('model.norm.weight', ['embed_tokens', 'lm_head'])).toBe(false);
  });
});

describe('HF checkpoint + adapter together', () => {
  it('every LoRA pair of the fixture fits its base weight', async () => {
    const base = await HFCheckpoint.open(tinyLlamaDir);
    const adapter = await PeftAdapter.open(tinyLoraDir);
    for (const pair of adapter.loraPairs.values()) {
      const [out, inFeatures] = base.info(pair.weightName).shape;
      expect(pair.aShape).toEqual([4, inFeatures]);
      expect(pair.bShape).toEqual([out, 4]);
    }
    expect(adapter.scaling).toBe(8);
    await Promise.all([base.close(), adapter.close()]);
  });
});
