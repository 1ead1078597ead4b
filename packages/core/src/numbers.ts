/**
 * What counts as a number in a flag or a config value, for every cllama CLI.
 *
 * - A whole number is written in digits with an optional sign (surrounding spaces allowed) and is
 *   exactly representable: '', ' ', '1e3', '0x10', '1.0' and '1e99' are not whole numbers.
 * - A number is anything `Number()` reads as finite, except the blank string (which `Number()` reads
 *   as 0): '1e-4' and '0.5' are numbers, 'abc', 'Infinity' and 'NaN' are not.
 *
 * Both return NaN for text that is not one, so each caller words its own error with the flag's name.
 */

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
