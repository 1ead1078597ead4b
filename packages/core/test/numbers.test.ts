import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { integerFlag, numberFlag, parseFiniteNumber, parseWholeNumber } from '../src/numbers.js';

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

  it('the flag parsers: one wording on every CLI, a UsageError (exit 2)', () => {
    const refusal = (parse: (t: string) => number, text: string) => {
      try {
        parse(text);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error(`'${text}' was accepted`);
    };
    expect(integerFlag('--seed')('-3')).toBe(-3);
    expect(refusal(integerFlag('--seed'), '1e3')).toBe("--seed must be an integer, got '1e3'");
    expect(refusal(integerFlag('--count', { min: 1 }), '0')).toBe("--count must be a positive integer, got '0'");
    expect(refusal(integerFlag('--n', { min: 0 }), '-1')).toBe("--n must be a non-negative integer, got '-1'");
    expect(refusal(integerFlag('--k', { min: 2 }), '1')).toBe("--k must be an integer >= 2, got '1'");
    expect(refusal(integerFlag('--k', { min: 1, max: 9 }), '10')).toBe("--k must be an integer in [1, 9], got '10'");
    expect(numberFlag('--t', { min: 0, max: 2 })('0.7')).toBe(0.7);
    expect(refusal(numberFlag('--t', { min: 0, max: 2 }), '3')).toBe("--t must be a number in [0, 2], got '3'");
    expect(refusal(numberFlag('--timeout', { min: 0.001 }), '0')).toBe("--timeout must be a number >= 0.001, got '0'");
    expect(refusal(numberFlag('--x', { max: 1 }), '2')).toBe("--x must be a number <= 1, got '2'");
    expect(refusal(numberFlag('--x'), 'abc')).toBe("--x must be a number, got 'abc'");
    expect(refusal(numberFlag('--x'), '')).toBe("--x must be a number, got ''");
  });
});
