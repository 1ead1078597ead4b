/**
 * The `.vocab` text file spm_train writes beside the model: one `piece<TAB>score` line per piece,
 * the score printed as C++ `std::ostream << float` does (printf "%g": 6 significant digits).
 */
import type { ModelProto } from '../proto.js';

export function formatScore(x: number): string {
  if (Object.is(x, -0)) return '-0';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  // Rounding to 6 digits can carry into a new decade (9.999995 → 10); take the exponent after it.
  const [mant, e] = x.toExponential(5).split('e') as [string, string];
  const X = Number(e);
  if (X < -4 || X >= 6) {
    const m = stripZeros(mant);
    const sign = X < 0 ? '-' : '+';
    const ae = Math.abs(X);
    return `${m}e${sign}${ae < 10 ? '0' : ''}${ae}`;
  }
  return stripZeros(x.toFixed(5 - X));
}

function stripZeros(s: string): string {
  if (!s.includes('.')) return s;
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

export function formatVocab(model: ModelProto): string {
  let out = '';
  for (const p of model.pieces) out += `${p.piece ?? ''}\t${formatScore(p.score ?? 0)}\n`;
  return out;
}
