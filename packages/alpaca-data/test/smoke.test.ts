import { describe, expect, it } from 'vitest';
import { PACKAGE_NAME } from '../src/index.js';

describe('alpaca-data', () => {
  it('exports its name', () => {
    expect(PACKAGE_NAME).toBe('@cllama/alpaca-data');
  });
});
