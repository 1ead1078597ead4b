import { describe, expect, it } from 'vitest';
import { parseFiniteNumber, parseWholeNumber } from '../src/numbers.js';

describe('flag numbers', () => {
  it('whole numbers: digits only, exactly representable', () => {
    expect(parseWholeNumber('42')).toBe(42);
    expect(parseWholeNumber(' -3 ')).toBe(-3);
    expect(parseWholeNumber('+7')).toBe(7);
    expect(parseWholeNumber(12)).toBe(12);
    for (const bad of ['', ' ', '1e3', '0x10', '1.0', '1e99', 'abc', '9007199254740993']) expect(parseWholeNumber(bad), bad).toBeNaN();
    expect(parseWholeNumber(1.5)).toBeNaN();
  });

  it('numbers: finite, not blank', () => {
    expect(parseFiniteNumber('1e-4')).toBe(1e-4);
    expect(parseFiniteNumber(' 0.5')).toBe(0.5);
    expect(parseFiniteNumber(2)).toBe(2);
    for (const bad of ['', '  ', 'abc', 'Infinity', 'NaN', '1e999']) expect(parseFiniteNumber(bad), bad).toBeNaN();
    expect(parseFiniteNumber(Number.NaN)).toBeNaN();
  });
});
