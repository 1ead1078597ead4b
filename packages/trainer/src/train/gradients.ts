/**
 * Gradient bookkeeping between backward passes and the optimizer: accumulation over micro-batches and
 * global-norm clipping (torch.nn.utils.clip_grad_norm_).
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendFacts } from '../backends/registry.js';
import { hasKernel, SUM_OF_SQUARES_KERNEL } from '../kernel-names.js';

/**
 * Sums the gradients of several micro-batches. The mean over `count()` micro-batches equals what HF
 * gets by dividing each micro-batch loss by gradient_accumulation_steps before backward.
 */
export class GradientAccumulator {
  private sums = new Map<string, tf.Tensor>();
  private micro = 0;

  /** Adds `grads` (the accumulator takes ownership: they are disposed here). */
  add(grads: ReadonlyMap<string, tf.Tensor>): void {
    for (const [name, g] of grads) {
      const prev = this.sums.get(name);
      if (prev) {
        this.sums.set(name, tf.keep(tf.add(prev, g)));
        prev.dispose();
        g.dispose();
      } else {
        this.sums.set(name, tf.keep(g));
      }
    }
    this.micro += 1;
  }

  count(): number {
    return this.micro;
  }

  /** The mean gradients; the caller owns them. The accumulator is empty afterwards. */
  takeMean(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    const scale = 1 / Math.max(1, this.micro);
    for (const [name, sum] of this.sums) {
      out.set(name, this.micro === 1 ? sum : tf.keep(tf.tidy(() => tf.mul(sum, tf.scalar(scale)))));
      if (this.micro !== 1) sum.dispose();
    }
    this.sums = new Map();
    this.micro = 0;
    return out;
  }

  dispose(): void {
    for (const t of this.sums.values()) t.dispose();
    this.sums = new Map();
    this.micro = 0;
  }
}

/**
 * Σ of same-shaped tensors: one AddN, or a tree of AddNs of at most the backend's `addNFanIn` inputs
 * (tfjs-webgpu's AddN binds every input as a storage buffer, and a WebGPU device allows 8 per shader).
 */
function sumAll(xs: tf.Tensor[]): tf.Tensor {
  const fanIn = backendFacts().addNFanIn;
  while (xs.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < xs.length; i += Math.min(fanIn, xs.length)) {
      const group = xs.slice(i, i + Math.min(fanIn, xs.length));
      next.push(group.length === 1 ? group[0]! : tf.addN(group));
    }
    xs = next;
  }
  return xs[0]!;
}

/** √(Σ‖g‖²) over all gradients, as a JS number (the one value read back). */
export async function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): Promise<number> {
  if (grads.size === 0) return 0;
  // Σ g² per tensor: one pass where the backend has the fused kernel, else square then sum
  const fused = hasKernel(SUM_OF_SQUARES_KERNEL);
  const sumOfSquares = (g: tf.Tensor) => (fused ? (tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, { x: g }) as tf.Tensor) : tf.sum(tf.square(g)));
  const norm = tf.tidy(() => tf.sqrt(sumAll([...grads.values()].map(sumOfSquares))));
  const value = (await norm.data())[0]!;
  norm.dispose();
  return value;
}

/**
 * torch.nn.utils.clip_grad_norm_'s factor: min(1, maxNorm / (norm + 1e-6)), with the norm before
 * clipping (what HF logs as grad_norm). maxNorm ≤ 0 disables clipping (HF: max_grad_norm 0): factor 1.
 * The training loop hands the factor to AdamW.step, which scales each gradient as it reads it, instead
 * of writing every gradient out once more.
 */
export async function clipFactor(grads: ReadonlyMap<string, tf.Tensor>, maxNorm: number): Promise<{ norm: number; factor: number }> {
  const norm = await globalNorm(grads);
  return { norm, factor: maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1 };
}

/**
 * torch.nn.utils.clip_grad_norm_: scales all gradients by clipFactor. Returns the norm before clipping
 * and the gradients to use; the input tensors that were replaced are disposed.
 */
export async function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): Promise<{ norm: number; grads: Map<string, tf.Tensor> }> {
  const { norm, factor } = await clipFactor(grads, maxNorm);
  if (factor >= 1) return { norm, grads };
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) {
    out.set(name, tf.keep(tf.tidy(() => tf.mul(g, tf.scalar(factor)))));
    g.dispose();
  }
  return { norm, grads: out };
}
