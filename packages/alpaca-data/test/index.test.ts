import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

describe('public API', () => {
  it('exports the agreed names and the pipeline pieces', () => {
    for (const name of [
      'buildSftExample',
      'buildPretrainBlocks',
      'writeTokenizedDataset',
      'openTokenizedDataset',
      'collate',
      'readJsonRecords',
      'readAlpacaRecords',
      'readTextLines',
      'convertFile',
      'mixSources',
      'formatMixReport',
      'tokenizeFiles',
    ]) {
      expect(typeof (api as Record<string, unknown>)[name]).toBe('function');
    }
    expect(api.PACKAGE_NAME).toBe('@cllama/alpaca-data');
    expect(api.IGNORE_INDEX).toBe(-100);
  });
});
