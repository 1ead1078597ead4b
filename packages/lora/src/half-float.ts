/**
 * IEEE half precision (F16) and bfloat16 (BF16) ↔ float32 conversion on plain arrays.
 * Node 20 has no Float16Array, so this is done with bit arithmetic on a shared 32-bit scratch word.
 */

const scratch = new ArrayBuffer(4);
const scratchF32 = new Float32Array(scratch);
const scratchU32 = new Uint32Array(scratch);

/** F16 bit pattern → float32 value (exact: every half value is representable in float32). */
export function halfBitsToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) {
    // Zero or subnormal: value = mantissa · 2^-24.
    const magnitude = mantissa * 2 ** -24;
    return sign ? -magnitude : magnitude;
  }
  if (exponent === 0x1f) {
    scratchU32[0] = sign | 0x7f800000 | (mantissa << 13);
    return scratchF32[0];
  }
  scratchU32[0] = sign | ((exponent + 112) << 23) | (mantissa << 13);
  return scratchF32[0];
}

/** float32 value → F16 bit pattern, rounded to nearest, ties to even (like torch's .half()). */
export function floatToHalfBits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Inf stays Inf; NaN stays a (quiet) NaN.
    return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  }
  const halfExponent = exponent - 112; // rebias 127 → 15
  if (halfExponent >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (halfExponent <= 0) {
    // Result is subnormal in half (or rounds to zero).
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000; // implicit leading 1
    const shift = 14 - halfExponent;
    let halfMantissa = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && halfMantissa & 1)) halfMantissa += 1;
    return sign | halfMantissa; // a carry into bit 10 correctly yields the smallest normal
  }
  let bits = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && bits & 1)) bits += 1; // carry may bump exponent (→ Inf ok)
  return sign | bits;
}

/** Decode little-endian F16 bytes into a new Float32Array. */
export function decodeF16(bytes: Uint8Array): Float32Array {
  const count = bytes.length >>> 1;
  const out = new Float32Array(count);
  const table = halfTable();
  for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return out;
}

/** Decode little-endian BF16 bytes into a new Float32Array (BF16 is the top half of a float32). */
export function decodeBF16(bytes: Uint8Array): Float32Array {
  const count = bytes.length >>> 1;
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) outBits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
  return out;
}

/** Encode float32 values as little-endian F16 bytes (round to nearest even). */
export function encodeF16(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = floatToHalfBits(values[i]);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

let cachedHalfTable: Float32Array | undefined;
/** All 65,536 half values as float32, built once (256 KiB): decoding is then one lookup per element. */
function halfTable(): Float32Array {
  if (!cachedHalfTable) {
    cachedHalfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) cachedHalfTable[h] = halfBitsToFloat(h);
  }
  return cachedHalfTable;
}
