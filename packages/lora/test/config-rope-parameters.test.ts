/**
 * transformers 5 writes the rotary settings as `rope_parameters` (no top-level rope_theta /
 * rope_scaling): they are read, and written back in agreement with the lifted fields. (Before, a
 * transformers-5 folder with rope_theta 500000 or linear scaling was read as theta 10000, unscaled.)
 */
import { describe, expect, it } from 'vitest';
import { llamaConfigToJson, parseLlamaConfig } from '../src/llama-config.js';

const base = { model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 100 };

describe('rope_parameters (transformers 5 config.json)', () => {
  it('reads rope_theta and linear scaling from rope_parameters', () => {
    const c = parseLlamaConfig({ ...base, head_dim: 8, rope_parameters: { rope_type: 'linear', factor: 4, rope_theta: 500000 } });
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling).toEqual({ type: 'linear', factor: 4 });
  });

  it('rope_type default is no scaling; rope_parameters wins over the old fields', () => {
    const c = parseLlamaConfig({ ...base, rope_theta: 10000, rope_parameters: { rope_type: 'default', rope_theta: 250000 } });
    expect(c.ropeTheta).toBe(250000);
    expect(c.ropeScaling).toBeNull();
  });

  it('refuses what it cannot run, in one message', () => {
    expect(() => parseLlamaConfig({ ...base, rope_parameters: { rope_type: 'llama3', factor: 8, rope_theta: 500000 } })).toThrow(
      /rope_scaling type "llama3" is not supported/,
    );
    expect(() => parseLlamaConfig({ ...base, rope_parameters: 'linear' })).toThrow(/rope_parameters must be an object/);
    expect(() => parseLlamaConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: -1 } })).toThrow(/'rope_theta' must be a positive number/);
  });

  it('writes rope_parameters back in agreement with rope_theta / rope_scaling', () => {
    const c = parseLlamaConfig({ ...base, rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 500000 } });
    const json = llamaConfigToJson(c);
    expect(json).toMatchObject({
      rope_theta: 500000,
      rope_scaling: { type: 'linear', factor: 2 },
      rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 500000 },
    });
    expect(parseLlamaConfig(json)).toMatchObject({ ropeTheta: 500000, ropeScaling: { type: 'linear', factor: 2 } });
    expect(llamaConfigToJson(parseLlamaConfig({ ...base, rope_theta: 20000 }))).not.toHaveProperty('rope_parameters');
  });
});
