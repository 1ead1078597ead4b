/**
 * PadV2 (constant padding) for the native backend: rows copied whole.
 *
 * The reference is tfjs-cpu's kernel: out = constantValue everywhere, x placed at offset `before`
 * along each axis. It moves element by element through coordinate conversions (~40 ms for the
 * gradient of the loss's [4, 255, 256] slice). Here the output is filled once and each last-axis row of
 * x is one copy, its position walked by an odometer over the leading axes. Other dtypes go to the cpu kernel.
 */
import { f32, prod, type Alloc, type KernelFn, type NativeKernel } from '../kernel-util.js';

export function padConstant(
  x: Float32Array,
  shape: readonly number[],
  paddings: ReadonlyArray<readonly [number, number]>,
  value: number,
  alloc: Alloc,
): Float32Array {
  const rank = shape.length;
  const outShape = shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1]);
  const out = alloc(prod(outShape));
  out.fill(value);
  if (x.length === 0) return out;
  if (rank === 0) {
    out[0] = x[0]!;
    return out;
  }
  const outStrides = outShape.map((_, i) => prod(outShape.slice(i + 1)));
  const row = shape[rank - 1]!;
  const rows = x.length / row;
  const coord = new Array<number>(rank - 1).fill(0);
  for (let r = 0; r < rows; r++) {
    let dst = paddings[rank - 1]![0];
    for (let a = 0; a < rank - 1; a++) dst += (coord[a]! + paddings[a]![0]) * outStrides[a]!;
    out.set(x.subarray(r * row, (r + 1) * row), dst);
    for (let a = rank - 2; a >= 0; a--) {
      if (++coord[a]! < shape[a]!) break;
      coord[a] = 0;
    }
  }
  return out;
}

export function padKernel(cpu: KernelFn, alloc: Alloc): KernelFn {
  return (args) => {
    const { x } = args.inputs;
    const { paddings, constantValue } = args.attrs as { paddings: Array<[number, number]>; constantValue: number };
    const xv = f32(args.backend, x!);
    if (!xv) return cpu(args);
    const outShape = x!.shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1]);
    return args.backend.makeTensorInfo(outShape, 'float32', padConstant(xv, x!.shape, paddings, constantValue, alloc));
  };
}

export const padV2Kernel: NativeKernel = { kernelName: 'PadV2', build: ({ cpu, alloc }) => padKernel(cpu('PadV2'), alloc) };
