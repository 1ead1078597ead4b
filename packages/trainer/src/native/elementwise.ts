/**
 * Broadcasting float32 binary ops (Add, Sub, Multiply, RealDiv) for the native backend.
 *
 * tfjs-cpu computes a broadcast binary op element by element through index ↔ coordinate
 * conversions (~2 M elements/s: the loss head's `logits − max` over [tokens, vocab] alone took seconds).
 * Here both operands get strides (0 along a broadcast axis), adjacent axes that broadcast alike are
 * merged, and the innermost axis runs as a plain loop; an odometer walks the outer axes.
 */

export type BinaryOp = 'Add' | 'Sub' | 'Multiply' | 'RealDiv';

/** Output allocation: the native backend passes its pool's (src/native/pool.ts); contents are overwritten. */
export type Alloc = (length: number) => Float32Array;
const fresh: Alloc = (length) => new Float32Array(length);

function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

function innerLoop(
  op: BinaryOp,
  out: Float32Array,
  o: number,
  a: Float32Array,
  ia: number,
  sa: number,
  b: Float32Array,
  ib: number,
  sb: number,
  n: number,
): void {
  switch (op) {
    case 'Add':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! + b[ib]!;
      break;
    case 'Sub':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! - b[ib]!;
      break;
    case 'Multiply':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! * b[ib]!;
      break;
    case 'RealDiv':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! / b[ib]!;
      break;
  }
}

/** a ∘ b with numpy broadcasting; undefined when the shapes do not broadcast (the caller's kernel words the error). */
export function broadcastBinary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
): { shape: number[]; values: Float32Array } | undefined {
  const shape = broadcastShape(aShape, bShape);
  if (!shape) return undefined;
  const size = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(size);
  if (size === 0) return { shape, values: out };
  const rank = shape.length;
  const pa = [...Array(rank - aShape.length).fill(1), ...aShape] as number[];
  const pb = [...Array(rank - bShape.length).fill(1), ...bShape] as number[];
  // axes inner → outer as [extent, stride in a, stride in b] (stride 0 = broadcast); an outer axis merges
  // into its inner neighbour when both operands step across the pair contiguously (or both broadcast)
  const dims: Array<[number, number, number]> = [];
  let strideA = 1;
  let strideB = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const extent = shape[i]!;
    const xa = pa[i] === 1 ? 0 : strideA;
    const xb = pb[i] === 1 ? 0 : strideB;
    strideA *= pa[i]!;
    strideB *= pb[i]!;
    if (extent === 1) continue;
    const inner = dims[dims.length - 1];
    if (inner && xa === inner[1] * inner[0] && xb === inner[2] * inner[0]) inner[0] *= extent;
    else dims.push([extent, xa, xb]);
  }
  dims.reverse(); // outer → inner
  if (dims.length === 0) {
    innerLoop(op, out, 0, a, 0, 0, b, 0, 0, 1);
    return { shape, values: out };
  }
  const [n, sa, sb] = dims[dims.length - 1]!;
  const outer = dims.slice(0, -1);
  const counter = new Array(outer.length).fill(0) as number[];
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < size; o += n) {
    innerLoop(op, out, o, a, ia, sa, b, ib, sb, n);
    // odometer over the outer axes
    for (let k = outer.length - 1; k >= 0; k--) {
      const [extent, ka, kb] = outer[k]!;
      if (++counter[k]! < extent) {
        ia += ka;
        ib += kb;
        break;
      }
      counter[k] = 0;
      ia -= ka * (extent - 1);
      ib -= kb * (extent - 1);
    }
  }
  return { shape, values: out };
}

/** Softmax over the last axis of rows of width `width` (max-subtracted, as tfjs-cpu). */
export function softmaxRows(x: Float32Array, width: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += width) {
    let max = -Infinity;
    for (let j = 0; j < width; j++) if (x[r + j]! > max) max = x[r + j]!;
    let sum = 0;
    for (let j = 0; j < width; j++) sum += out[r + j] = Math.exp(x[r + j]! - max);
    for (let j = 0; j < width; j++) out[r + j]! /= sum;
  }
  return out;
}

/** Splits `x` along `axis` into pieces of the given sizes: block copies, no per-element indexing. */
export function splitAxis(x: Float32Array, shape: readonly number[], axis: number, sizes: readonly number[], alloc: Alloc = fresh): Float32Array[] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const total = shape[axis]!;
  let start = 0;
  return sizes.map((size) => {
    const out = alloc(outer * size * inner);
    const run = size * inner;
    for (let o = 0; o < outer; o++) out.set(x.subarray((o * total + start) * inner, (o * total + start) * inner + run), o * run);
    start += size;
    return out;
  });
}

/** x[begin : begin + size] of a row-major tensor: the innermost contiguous runs copied as blocks. */
export function sliceBlocks(x: Float32Array, shape: readonly number[], begin: readonly number[], size: readonly number[], alloc: Alloc = fresh): Float32Array {
  const rank = shape.length;
  const out = alloc(size.reduce((a, b) => a * b, 1));
  if (out.length === 0 || rank === 0) return out.length ? out.fill(x[0]!) : out;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  // axis k and everything inside it form one contiguous run when the axes inside k are taken whole
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k] && begin[k] === 0) k--;
  const runLen = size[k]! * strides[k]!;
  const counter = new Array<number>(k).fill(0);
  let src = begin.reduce((acc, b, i) => acc + b * strides[i]!, 0);
  for (let o = 0; o < out.length; o += runLen) {
    out.set(x.subarray(src, src + runLen), o);
    for (let i = k - 1; i >= 0; i--) {
      if (++counter[i]! < size[i]!) {
        src += strides[i]!;
        break;
      }
      counter[i] = 0;
      src -= strides[i]! * (size[i]! - 1);
    }
  }
  return out;
}

/** Unary float32 ops as plain loops (tfjs-cpu calls a closure per element). Same formulas as tfjs-cpu. */
export type UnaryOp = 'Square' | 'Sqrt' | 'Rsqrt' | 'Floor';

export function unary(op: UnaryOp, x: Float32Array, alloc: Alloc = fresh): Float32Array {
  const out = alloc(x.length);
  const n = x.length;
  switch (op) {
    case 'Square':
      for (let i = 0; i < n; i++) out[i] = x[i]! * x[i]!;
      break;
    case 'Sqrt':
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!);
      break;
    case 'Rsqrt':
      for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!);
      break;
    case 'Floor':
      for (let i = 0; i < n; i++) out[i] = Math.floor(x[i]!);
      break;
  }
  return out;
}

/**
 * Sum / Max / Mean over the last `rowLength` elements of each row (the trailing axes), as tfjs-cpu
 * computes them: float64 accumulation stored as float32; Mean sums x / n rounded to float32 per element.
 */
export type ReduceOp = 'Sum' | 'Max' | 'Mean';

export function reduceRows(op: ReduceOp, x: Float32Array, rowLength: number): Float32Array {
  const rows = rowLength === 0 ? 0 : x.length / rowLength;
  const out = new Float32Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += rowLength) {
    if (op === 'Max') {
      let max = x[o]!;
      for (let j = 1; j < rowLength; j++) if (x[o + j]! > max || Number.isNaN(x[o + j]!)) max = x[o + j]!;
      out[r] = max;
    } else if (op === 'Sum') {
      let sum = 0;
      for (let j = 0; j < rowLength; j++) sum += x[o + j]!;
      out[r] = sum;
    } else {
      let sum = 0;
      for (let j = 0; j < rowLength; j++) sum += Math.fround(x[o + j]! / rowLength);
      out[r] = sum;
    }
  }
  return out;
}
