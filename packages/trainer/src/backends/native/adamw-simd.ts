/**
 * AdamW's update (kernels/CllamaAdamW.ts `adamwUpdate`, same inputs and outputs) in WebAssembly SIMD: four
 * float32 lanes per instruction, one block of each array at a time copied into the module's memory,
 * updated there, and copied back.
 *
 *   g ← gs·g   m ← m + (g − m)(1 − β₁)   v ← v·β₂ + g²(1 − β₂)
 *   p ← p·decay − (m · step·bc2) / (√v + ε·bc2)
 *
 * Why: the JS loop runs at ~8 ns per parameter (float64 √ and ÷, one element at a time), 0.2–0.45 s of a
 * stage-2 / SFT / full step; here ~3 ns, most of it the block copies (the arrays live in JS memory, which
 * a WebAssembly module cannot address). onnxruntime's elementwise ops were no faster (one pass per op).
 *
 * How it differs from the JS loop: every operation rounds to float32, as the op chain (src/train/adamw.ts)
 * does, where the loop computes in float64 and rounds what it stores; both agree with the chain to a few
 * float32 ulps. The module is written here byte by byte (one function, a few dozen instructions; the
 * opcodes are the WebAssembly core and SIMD specifications'), so no toolchain is needed; `adamwSimd`
 * returns undefined where the runtime has no WebAssembly SIMD, and the caller keeps the JS loop.
 */
import type { AdamWKernelAttrs } from '../../kernel-names.js';

/** Floats per array per block: four blocks fill the module's two 64 KiB pages. */
const BLOCK = 8192;
const OFFSET = { p: 0, g: 4 * BLOCK, m: 8 * BLOCK, v: 12 * BLOCK } as const;

const uleb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const simd = (op: number) => [0xfd, ...uleb(op)];
/** v128.load / v128.store at [i + offset] (align 2^4). */
const load = (offset: number) => [...get(I), ...simd(0x00), 4, ...uleb(offset)];
const store = (offset: number, value: number[]) => [...get(I), ...value, ...simd(0x0b), 4, ...uleb(offset)];
const SPLAT = 0x13;
const SQRT = 227;
const ADD = 228;
const SUB = 229;
const MUL = 230;
const DIV = 231;

// params 0 n (elements), 1…7 the scalars in SCALARS order; locals: I (byte offset), END, their splats, g, m', v'
const SCALARS = ['gs', 'decay', 'oneMinusB1', 'b2', 'oneMinusB2', 'stepBc2', 'epsBc2'] as const;
const I = 8;
const END = 9;
const S = (k: (typeof SCALARS)[number]) => get(10 + SCALARS.indexOf(k));
const G4 = 17;
const M4 = 18;
const V4 = 19;

function moduleBytes(): Uint8Array {
  const body = [
    ...SCALARS.flatMap((_, k) => [...get(1 + k), ...simd(SPLAT), ...set(10 + k)]),
    ...get(0),
    0x41, // i32.const 4; i32.mul → END (bytes)
    4,
    0x6c,
    ...set(END),
    0x02, // block
    0x40,
    0x03, // loop
    0x40,
    ...get(I),
    ...get(END),
    0x4f, // i32.ge_u; br_if 1 (leave the block)
    0x0d,
    1,
    // g = gs·g
    ...load(OFFSET.g),
    ...S('gs'),
    ...simd(MUL),
    ...set(G4),
    // m' = m + (g − m)(1 − β₁)
    ...load(OFFSET.m),
    ...get(G4),
    ...load(OFFSET.m),
    ...simd(SUB),
    ...S('oneMinusB1'),
    ...simd(MUL),
    ...simd(ADD),
    ...set(M4),
    // v' = v·β₂ + g·g·(1 − β₂)
    ...load(OFFSET.v),
    ...S('b2'),
    ...simd(MUL),
    ...get(G4),
    ...get(G4),
    ...simd(MUL),
    ...S('oneMinusB2'),
    ...simd(MUL),
    ...simd(ADD),
    ...set(V4),
    ...store(OFFSET.m, get(M4)),
    ...store(OFFSET.v, get(V4)),
    // p' = p·decay − (m'·step·bc2) / (√v' + ε·bc2)
    ...store(OFFSET.p, [
      ...load(OFFSET.p),
      ...S('decay'),
      ...simd(MUL),
      ...get(M4),
      ...S('stepBc2'),
      ...simd(MUL),
      ...get(V4),
      ...simd(SQRT),
      ...S('epsBc2'),
      ...simd(ADD),
      ...simd(DIV),
      ...simd(SUB),
    ]),
    ...get(I),
    0x41, // i32.const 16; i32.add → I
    16,
    0x6a,
    ...set(I),
    0x0c, // br 0 (loop)
    0,
    0x0b, // end loop, block, function
    0x0b,
    0x0b,
  ];
  const code = [
    ...vec([
      [2, I32],
      [SCALARS.length + 3, V128],
    ]),
    ...body,
  ];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0], // \0asm, version 1
    ...section(1, vec([[0x60, ...vec([[I32], ...SCALARS.map(() => [F32])]), 0]])), // type: (i32, f32 × 7) → ()
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(5, vec([[0x00, ...uleb(2)]])), // memory: 2 pages
    ...section(
      7,
      vec([
        [...name('adamw'), 0x00, 0],
        [...name('mem'), 0x02, 0],
      ]),
    ), // exports
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

type Update = (
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  a: AdamWKernelAttrs,
  alloc: (length: number) => Float32Array,
  inPlace: { p?: boolean; m?: boolean; v?: boolean },
) => { p: Float32Array; m: Float32Array; v: Float32Array };

let compiled: Update | null | undefined;

/** The SIMD update (adamwUpdate's signature), or undefined where WebAssembly SIMD is missing. */
export function adamwSimd(): Update | undefined {
  if (compiled === undefined) compiled = compile();
  return compiled ?? undefined;
}

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { adamw: (n: number, ...scalars: number[]) => void; mem: { buffer: ArrayBuffer } } };
}

function compile(): Update | null {
  let kernel: (n: number, ...scalars: number[]) => void;
  let mem: Float32Array;
  try {
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(moduleBytes()));
    kernel = instance.exports.adamw;
    mem = new Float32Array(instance.exports.mem.buffer);
  } catch {
    return null; // no WebAssembly, or no SIMD: the module does not validate
  }
  return (p, g, m, v, a, alloc, inPlace) => {
    const f = Math.fround;
    const bc2 = f(a.bc2Sqrt);
    const scalars = [f(a.gradScale ?? 1), f(a.decayFactor), f(1 - a.beta1), f(a.beta2), f(1 - a.beta2), f(f(a.stepSize) * bc2), f(f(a.eps) * bc2)];
    const n = p.length;
    const po = inPlace.p ? p : alloc(n);
    const mo = inPlace.m ? m : alloc(n);
    const vo = inPlace.v ? v : alloc(n);
    for (let start = 0; start < n; start += BLOCK) {
      const len = Math.min(BLOCK, n - start);
      const end = start + len;
      mem.set(p.subarray(start, end), OFFSET.p / 4);
      mem.set(g.subarray(start, end), OFFSET.g / 4);
      mem.set(m.subarray(start, end), OFFSET.m / 4);
      mem.set(v.subarray(start, end), OFFSET.v / 4);
      // whole vectors: the lanes past `len` hold stale values and are not copied back
      kernel(Math.ceil(len / 4) * 4, ...scalars);
      po.set(mem.subarray(OFFSET.p / 4, OFFSET.p / 4 + len), start);
      mo.set(mem.subarray(OFFSET.m / 4, OFFSET.m / 4 + len), start);
      vo.set(mem.subarray(OFFSET.v / 4, OFFSET.v / 4 + len), start);
    }
    return { p: po, m: mo, v: vo };
  };
}
