// One error base class for the package: every error @cllama/tokenizer-merge exports is a TokenizerMergeError (and so a CllamaError).
import { CllamaError } from '@cllama/core';
import { describe, expect, it } from 'vitest';
import * as tokenizer from '../src/index.js';

describe('TokenizerMergeError', () => {
  it('is the base of every exported error class', () => {
    const classes = Object.entries(tokenizer).filter(([name]) => name.endsWith('Error'));
    expect(classes.map(([name]) => name).sort()).toEqual(['EncoderModelError', 'MergeInputError', 'ModelFormatError', 'TokenizerMergeError', 'TrainError']);
    for (const [name, E] of classes) {
      const e = new (E as new (m: string) => Error)('x');
      expect(e, name).toBeInstanceOf(tokenizer.TokenizerMergeError);
      expect(e, name).toBeInstanceOf(CllamaError);
    }
  });
});
