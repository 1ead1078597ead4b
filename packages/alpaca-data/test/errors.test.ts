// One error base class for the package: every error @cllama/alpaca-data exports is an AlpacaDataError
// (and so a CllamaError), except core's shared UsageError (a bad command line, exit 2), re-exported.
import { CllamaError, UsageError } from '@cllama/core';
import { describe, expect, it } from 'vitest';
import * as data from '../src/index.js';

describe('AlpacaDataError', () => {
  it('is the base of every exported error class but the shared UsageError', () => {
    const classes = Object.entries(data).filter(([name]) => name.endsWith('Error'));
    expect(classes.map(([name]) => name).sort()).toEqual(['AlpacaDataError', 'InputFormatError', 'RecordError', 'TokenizedDatasetError', 'UsageError']);
    expect(data.UsageError).toBe(UsageError);
    for (const [name, E] of classes) {
      if (name === 'UsageError') continue;
      const e = new (E as new (...a: string[]) => Error)('f', 'w', 'p');
      expect(e, name).toBeInstanceOf(data.AlpacaDataError);
      expect(e, name).toBeInstanceOf(CllamaError);
    }
  });
});
