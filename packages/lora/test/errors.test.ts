// One error base class for the package: every error @cllama/lora exports is a LoraError (and so a CllamaError).
import { CllamaError } from '@cllama/core';
import { describe, expect, it } from 'vitest';
import * as lora from '../src/index.js';

describe('LoraError', () => {
  it('is the base of every exported error class, and of the LoRA math refusals', () => {
    const classes = Object.entries(lora).filter(([name]) => name.endsWith('Error'));
    expect(classes.map(([name]) => name).sort()).toEqual(['CheckpointError', 'LlamaConfigError', 'LoraError', 'MergeError', 'PeftError', 'SafetensorsError']);
    for (const [name, E] of classes) {
      const e = new (E as new (m: string) => Error)('x');
      expect(e, name).toBeInstanceOf(lora.LoraError);
      expect(e, name).toBeInstanceOf(CllamaError);
    }
    const pair = { ...lora.initLoraPair(2, 2, 1, () => 0.5), r: 1, inFeatures: 2, outFeatures: 2, scaling: 1 };
    expect(() => lora.mergeLora(new Float32Array(3), pair)).toThrow(lora.LoraError);
    expect(() => lora.matchesTargetModule('model.layers.0.q_proj.weight', '(')).toThrow(lora.LoraError);
  });
});
