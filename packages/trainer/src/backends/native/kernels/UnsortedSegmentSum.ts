/**
 * UnsortedSegmentSum (the embedding gradient: out[ids[r]] += x[r]) for the native backend, as one pass
 * over the rows in JS.
 *
 * Reference: tfjs-cpu's kernel, which runs a mask-and-sum per segment, O(vocabulary × tokens) —
 * minutes on a real vocabulary; it still takes other dtypes and segment ids that are not one int32
 * row. Out-of-range ids are dropped, as TF does. The result's Σ x², over the rows it touched (the
 * others are zero), is left for the gradient norm (../known-sums.ts).
 */
import { f32, type NativeKernel } from '../kernel-util.js';
import { rememberSumOfSquares } from '../known-sums.js';
import { sumOfSquares } from './CllamaSumOfSquares.js';

export const unsortedSegmentSumKernel: NativeKernel = {
  kernelName: 'UnsortedSegmentSum',
  build: ({ alloc, cpu }) => {
    const cpuSegmentSum = cpu('UnsortedSegmentSum');
    return (args) => {
      const { x, segmentIds } = args.inputs;
      const { numSegments } = args.attrs as { numSegments: number };
      const xv = f32(args.backend, x!);
      const ids = args.backend.data.get(segmentIds!.dataId).values;
      if (!xv || segmentIds!.shape.length !== 1 || !(ids instanceof Int32Array)) return cpuSegmentSum(args);
      const width = xv.length / ids.length;
      const out = alloc(numSegments * width).fill(0);
      const touched = new Set<number>();
      for (let r = 0; r < ids.length; r++) {
        const seg = ids[r]!;
        if (seg < 0 || seg >= numSegments) continue; // TF drops out-of-range ids
        touched.add(seg);
        const src = r * width;
        const dst = seg * width;
        for (let j = 0; j < width; j++) out[dst + j]! += xv[src + j]!;
      }
      const info = args.backend.makeTensorInfo([numSegments, ...x!.shape.slice(1)], 'float32', out);
      // the gradient norm's Σ x² of the result: only the touched rows are not zero
      let squares = 0;
      for (const seg of touched) squares += sumOfSquares(out.subarray(seg * width, (seg + 1) * width));
      rememberSumOfSquares(info.dataId, squares);
      return info;
    };
  },
};
