/**
 * tf.dropout's keep mask, drawn in one loop.
 *
 * The reference is tfjs-core's own: `tf.dropout(x, rate, undefined, seed)` multiplies x by
 * floor(u + keep) / keep, keep = float32(1 − rate), where u = tf.randomUniform(shape, 0, 1, 'float32',
 * seed): seedrandom's Alea generator (Baagøe 2010) seeded with String(seed), one draw per element,
 * stored as float32. An element is kept when float32(u + keep) ≥ 1 (here: one comparison of the raw draw,
 * leastKeptDraw).
 *
 * How this version differs: the same generator (its Mash seeding and its step, ported exactly) in one
 * loop with the state in locals and a 0/1 byte per element, instead of tfjs's closure call per value,
 * a float32 tensor of draws and three elementwise ops over it (~12 ns per element measured; the LoRA
 * masks of a SmolLM-135M step are ~80 M elements). Each Alea step waits on the previous one's carry,
 * so a layer's masks (one stream per LoRA projection) are drawn four streams at a time, interleaved in
 * one loop: the same numbers per stream, ~2× the throughput. Tests compare with tf.dropout bit for bit.
 */

/** Baagøe's Mash hash, as seedrandom's alea.js uses it: one shared state across calls. */
function mash(): (data: string) => number {
  let n = 0xefc8249d;
  return (data) => {
    for (let i = 0; i < data.length; i++) {
      n += data.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h -= n;
      h *= n;
      n = h >>> 0;
      h -= n;
      n += h * 0x100000000; // 2^32
    }
    return (n >>> 0) * 2.3283064365386963e-10; // 2^-32
  };
}

/** Alea's state after seeding with `seed` (seedrandom's alea(seed)). */
function aleaState(seed: string): Alea {
  const m = mash();
  let s0 = m(' ');
  let s1 = m(' ');
  let s2 = m(' ');
  s0 -= m(seed);
  if (s0 < 0) s0 += 1;
  s1 -= m(seed);
  if (s1 < 0) s1 += 1;
  s2 -= m(seed);
  if (s2 < 0) s2 += 1;
  return { s0, s1, s2, c: 1 };
}

/**
 * The least raw draw (Alea's float64, before tfjs stores it as float32 u) that tf.dropout keeps.
 * Kept ⟺ float32(u + keep) ≥ 1: u and keep are float32, so u + keep is exact in float64, and it rounds
 * to 1 from 1 − 2⁻²⁵ up (that midpoint ties to the even 1.0), so kept ⟺ u ≥ L = 1 − 2⁻²⁵ − keep ⟺
 * u ≥ F, the least float32 ≥ L. u = float32(draw) ≥ F ⟺ draw is above the midpoint between F and the
 * float32 below it — or on it, when that tie rounds to F (F even). One float64 comparison per element.
 */
export function leastKeptDraw(rate: number): number {
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  const least = 1 - 2 ** -25 - Math.fround(1 - rate);
  f[0] = least;
  if (f[0]! < least) bits[0]! += 1; // the least float32 ≥ least
  const F = f[0]!;
  const evenF = (bits[0]! & 1) === 0;
  bits[0]! -= 1;
  const midpoint = (f[0]! + F) / 2; // exact in float64
  if (evenF) return midpoint;
  // the tie rounds down: the least kept draw is the next float64 above the midpoint
  const d = new Float64Array([midpoint]);
  new BigUint64Array(d.buffer)[0]! += 1n;
  return d[0]!;
}

type Alea = { s0: number; s1: number; s2: number; c: number };
const STEP = 2.3283064365386963e-10; // 2^-32

/** Draws `to − from` values of one stream into out[from, to). */
function fill1(a: Alea, out: Uint8Array, from: number, to: number, least: number): void {
  let { s0, s1, s2, c } = a;
  for (let i = from; i < to; i++) {
    const t = 2091639 * s0 + c * STEP;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    out[i] = s2 >= least ? 1 : 0;
  }
  Object.assign(a, { s0, s1, s2, c });
}

/** The same for four streams at once, interleaved (independent carry chains run side by side). */
function fill4(st: Alea[], out: Uint8Array[], n: number, least: number): void {
  const [a, b, cc, d] = st as [Alea, Alea, Alea, Alea];
  const [oa, ob, oc, od] = out as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  let { s0: a0, s1: a1, s2: a2, c: ac } = a;
  let { s0: b0, s1: b1, s2: b2, c: bc } = b;
  let { s0: c0, s1: c1, s2: c2, c: ccc } = cc;
  let { s0: d0, s1: d1, s2: d2, c: dc } = d;
  for (let i = 0; i < n; i++) {
    const ta = 2091639 * a0 + ac * STEP;
    const tb = 2091639 * b0 + bc * STEP;
    const tc = 2091639 * c0 + ccc * STEP;
    const td = 2091639 * d0 + dc * STEP;
    a0 = a1;
    a1 = a2;
    ac = ta | 0;
    a2 = ta - ac;
    b0 = b1;
    b1 = b2;
    bc = tb | 0;
    b2 = tb - bc;
    c0 = c1;
    c1 = c2;
    ccc = tc | 0;
    c2 = tc - ccc;
    d0 = d1;
    d1 = d2;
    dc = td | 0;
    d2 = td - dc;
    oa[i] = a2 >= least ? 1 : 0;
    ob[i] = b2 >= least ? 1 : 0;
    oc[i] = c2 >= least ? 1 : 0;
    od[i] = d2 >= least ? 1 : 0;
  }
  Object.assign(a, { s0: a0, s1: a1, s2: a2, c: ac });
  Object.assign(b, { s0: b0, s1: b1, s2: b2, c: bc });
  Object.assign(cc, { s0: c0, s1: c1, s2: c2, c: ccc });
  Object.assign(d, { s0: d0, s1: d1, s2: d2, c: dc });
}

/**
 * The keep masks (1 = kept) of tf.dropout(x_i, rate, undefined, seeds[i]) for x_i of lengths[i]
 * elements: mask i is exactly what one call per seed would draw.
 */
export function dropoutKeepMasks(seeds: ReadonlyArray<number | string>, rate: number, lengths: readonly number[]): Uint8Array[] {
  const least = leastKeptDraw(rate);
  const out = lengths.map((n) => new Uint8Array(n));
  const states = seeds.map((s) => aleaState(String(s)));
  for (let g = 0; g < seeds.length; g += 4) {
    const idx = [0, 1, 2, 3].map((k) => g + k).filter((i) => i < seeds.length);
    let common = 0;
    if (idx.length > 1) {
      common = Math.min(...idx.map((i) => lengths[i]!));
      // a group of fewer than four streams runs a throwaway fourth (and third) beside them
      const spare = new Uint8Array(common);
      const st = [...idx.map((i) => states[i]!), ...Array.from({ length: 4 - idx.length }, () => aleaState('spare'))];
      fill4(st, [...idx.map((i) => out[i]!), ...Array.from({ length: 4 - idx.length }, () => spare)], common, least);
    }
    for (const i of idx) fill1(states[i]!, out[i]!, common, lengths[i]!, least);
  }
  return out;
}

/**
 * The keep mask (1 = kept) of tf.dropout(x, rate, undefined, seed) for an x of `n` elements.
 */
export function dropoutKeepMask(seed: number | string, rate: number, n: number): Uint8Array {
  return dropoutKeepMasks([seed], rate, [n])[0]!;
}
