// One error base class for the package: every error @cllama/trainer exports is a TrainerError (and so a CllamaError).
import { CllamaError } from '@cllama/core';
import { describe, expect, it } from 'vitest';
import * as trainer from '../src/index.js';

describe('TrainerError', () => {
  it('is the base of every exported error class', () => {
    const classes = Object.entries(trainer).filter(([name]) => name.endsWith('Error'));
    expect(classes.length).toBeGreaterThan(5);
    for (const [name, E] of classes) {
      const e = new (E as new (m: string) => Error)('x');
      expect(e, name).toBeInstanceOf(trainer.TrainerError);
      expect(e, name).toBeInstanceOf(CllamaError);
    }
  });
});
