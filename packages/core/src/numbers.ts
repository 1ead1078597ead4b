/**
 * What counts as a number in a flag or a config value, for every cllama CLI, and the one wording of
 * a refused number flag.
 *
 * - A whole number is written in digits with an optional sign (surrounding spaces allowed) and is
 *   exactly representable: '', ' ', '1e3', '0x10', '1.0' and '1e99' are not whole numbers.
 * - A number is anything `Number()` reads as finite, except the blank string (which `Number()` reads
 *   as 0): '1e-4' and '0.5' are numbers, 'abc', 'Infinity' and 'NaN' are not.
 *
 * Both return NaN for text that is not one. `integerFlag` / `numberFlag` are the flag parsers built on
 * them: they return the value or throw a `UsageError` (exit 2) worded the same on every CLI,
 * `<flag> must be <what>, got '<text>'`, where <what> is "an integer", "a positive integer" (min 1),
 * "a non-negative integer" (min 0), "an integer >= n", "an integer in [a, b]", "a number",
 * "a number >= a", "a number <= b" or "a number in [a, b]".
 */
import { UsageError } from './errors.js';

export interface FlagRange {
  min?: number;
  max?: number;
}

/** The integer written in `text`, or NaN. */
export function parseWholeNumber(text: string | number): number {
  if (typeof text === 'number') return Number.isSafeInteger(text) ? text : Number.NaN;
  if (!/^\s*[+-]?\d+\s*$/.test(text)) return Number.NaN;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Number.NaN;
}

/** The finite number written in `text`, or NaN. */
export function parseFiniteNumber(text: string | number): number {
  if (typeof text === 'number') return Number.isFinite(text) ? text : Number.NaN;
  if (text.trim() === '') return Number.NaN;
  const n = Number(text);
  return Number.isFinite(n) ? n : Number.NaN;
}

function rangeText(kind: string, { min, max }: FlagRange): string {
  if (min !== undefined && max !== undefined) return `${kind} in [${min}, ${max}]`;
  if (min !== undefined) return `${kind} >= ${min}`;
  if (max !== undefined) return `${kind} <= ${max}`;
  return kind;
}

function integerText(range: FlagRange): string {
  if (range.max === undefined && range.min === 1) return 'a positive integer';
  if (range.max === undefined && range.min === 0) return 'a non-negative integer';
  return rangeText('an integer', range);
}

function inRange(n: number, { min, max }: FlagRange): boolean {
  return !Number.isNaN(n) && (min === undefined || n >= min) && (max === undefined || n <= max);
}

/** The parser of an integer flag (`--seed <n>`): digits only, within `range`. */
export function integerFlag(flag: string, range: FlagRange = {}): (text: string) => number {
  return (text) => {
    const n = parseWholeNumber(text);
    if (!inRange(n, range)) throw new UsageError(`${flag} must be ${integerText(range)}, got '${text}'`);
    return n;
  };
}

/** The parser of a number flag (`--temperature <t>`): finite, within `range`. */
export function numberFlag(flag: string, range: FlagRange = {}): (text: string) => number {
  return (text) => {
    const n = parseFiniteNumber(text);
    if (!inRange(n, range)) throw new UsageError(`${flag} must be ${rangeText('a number', range)}, got '${text}'`);
    return n;
  };
}
