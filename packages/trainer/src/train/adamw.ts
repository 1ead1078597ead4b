/**
 * AdamW exactly as torch.optim.AdamW (defaults betas 0.9/0.999, eps 1e-8, amsgrad off) on tf.Variables:
 *
 *   p ← p · (1 − lr·wd)                          decoupled weight decay, before the moment update
 *   m ← m + (1 − β1)·(g − m)                     torch's lerp_ form
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
 *
 * Every intermediate tensor is created inside tf.tidy and the moments live in tf.Variables that are
 * assigned in place, so a step leaves the tensor count unchanged. Unlike torch, the step count t is
 * one global count (saved as the optimizer state's `step`), not one per parameter. A backend with a
 * fused AdamW kernel (ADAMW_KERNEL, src/kernel-names.ts; native: src/backends/native/kernels/CllamaAdamW.ts) runs the same update in one pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL, hasKernel, type AdamWKernelAttrs } from '../kernel-names.js';
import { TrainerError } from '../errors.js';

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  /** Default weight decay; a parameter may override it (HF: no decay for norms and biases). */
  weightDecay?: number;
}

export interface OptimizedParameter {
  /** Stable name used for the optimizer state on disk (the HF weight name). */
  name: string;
  variable: tf.Variable;
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  /** exp_avg/<name> and exp_avg_sq/<name> for every parameter. */
  tensors: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

export class OptimizerStateError extends TrainerError {
  override name = 'OptimizerStateError';
}

/** HF Trainer's rule: no weight decay for biases and normalization weights. */
export function defaultDecayFor(weightName: string, weightDecay: number): number {
  return /(^|\.)(bias|[a-z_]*norm[a-z_]*)(\.|$)|_norm\.|layernorm|rmsnorm/i.test(weightName) ? 0 : weightDecay;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of optimizer steps taken: one count for all parameters (torch keeps state['step'] per parameter). */
  stepCount = 0;
  private readonly slots: Array<{ param: OptimizedParameter; decay: number; m: tf.Variable; v: tf.Variable }>;

  constructor(params: OptimizedParameter[], opts: AdamWOptions = {}) {
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-2; // torch.optim.AdamW default
    for (const b of [this.beta1, this.beta2]) if (!(b >= 0 && b < 1)) throw new RangeError(`Adam betas must be in [0, 1), got ${b}`);
    const seen = new Set<string>();
    this.slots = params.map((param) => {
      if (seen.has(param.name)) throw new RangeError(`parameter '${param.name}' given twice to AdamW`);
      seen.add(param.name);
      if (param.variable.dtype !== 'float32') throw new TypeError(`AdamW needs float32 parameters; '${param.name}' is ${param.variable.dtype}`);
      return {
        param,
        decay: param.weightDecay ?? this.weightDecay,
        // tidy: the zeros' own handle goes, the variable alone holds its data (a backend may then update it in place)
        m: tf.tidy(() => tf.variable(tf.zerosLike(param.variable), false, `adamw/exp_avg/${param.name}/${uniq()}`)),
        v: tf.tidy(() => tf.variable(tf.zerosLike(param.variable), false, `adamw/exp_avg_sq/${param.name}/${uniq()}`)),
      };
    });
  }

  get parameterNames(): string[] {
    return this.slots.map((s) => s.param.name);
  }

  /**
   * One update with learning rate `lr`. `grads` maps the parameter name to its gradient, used as
   * `gradScale` · gradient (the gradient clipping's factor; each product rounded to float32, as a
   * clipped copy would be); a parameter without a gradient is skipped (torch: p.grad is None). Unlike torch, which keeps a step count per
   * parameter, there is ONE step count for the optimizer, advanced on every call: the bias corrections
   * of a parameter that missed a step use the global count. The trainer gives every trainable
   * parameter a gradient on every step, so the two agree there.
   */
  step(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.stepCount += 1;
    const t = this.stepCount;
    const bc1 = 1 - this.beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    const stepSize = lr / bc1;
    const fused = hasKernel(ADAMW_KERNEL);
    tf.tidy(() => {
      for (const slot of this.slots) {
        const given = grads.get(slot.param.name);
        if (!given) continue;
        if (!shapesEqual(given.shape, slot.param.variable.shape)) {
          throw new RangeError(`gradient for '${slot.param.name}' has shape [${given.shape}], parameter has [${slot.param.variable.shape}]`);
        }
        const p = slot.param.variable;
        if (fused) {
          // the same update in one pass, where the backend has it (src/kernel-names.ts)
          const attrs: AdamWKernelAttrs = {
            decayFactor: 1 - lr * slot.decay,
            beta1: this.beta1,
            beta2: this.beta2,
            bc2Sqrt,
            eps: this.eps,
            stepSize,
            gradScale,
          };
          const [pn, mn, vn] = tf.engine().runKernel(ADAMW_KERNEL, { p, g: given, m: slot.m, v: slot.v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          slot.m.assign(mn!);
          slot.v.assign(vn!);
          p.assign(pn!);
          continue;
        }
        const g = gradScale !== 1 ? tf.mul(given, tf.scalar(gradScale)) : given;
        const decayed = slot.decay !== 0 ? tf.mul(p, tf.scalar(1 - lr * slot.decay)) : p;
        const m = tf.add(slot.m, tf.mul(tf.sub(g, slot.m), tf.scalar(1 - this.beta1)));
        const v = tf.add(tf.mul(slot.v, tf.scalar(this.beta2)), tf.mul(tf.square(g), tf.scalar(1 - this.beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), tf.scalar(bc2Sqrt)), tf.scalar(this.eps));
        const updated = tf.sub(decayed, tf.mul(tf.div(m, denom), tf.scalar(stepSize)));
        slot.m.assign(m);
        slot.v.assign(v);
        p.assign(updated);
      }
    });
  }

  /** The moments as host copies (read asynchronously: every backend, webgpu included). */
  async exportState(): Promise<AdamWState> {
    const tensors: AdamWState['tensors'] = [];
    for (const slot of this.slots) {
      tensors.push({ name: `exp_avg/${slot.param.name}`, shape: [...slot.m.shape], data: (await slot.m.data()) as Float32Array });
      tensors.push({ name: `exp_avg_sq/${slot.param.name}`, shape: [...slot.v.shape], data: (await slot.v.data()) as Float32Array });
    }
    return { step: this.stepCount, tensors };
  }

  loadState(state: AdamWState): void {
    const byName = new Map(state.tensors.map((t) => [t.name, t]));
    for (const slot of this.slots) {
      for (const [kind, target] of [
        ['exp_avg', slot.m],
        ['exp_avg_sq', slot.v],
      ] as const) {
        const saved = byName.get(`${kind}/${slot.param.name}`);
        if (!saved) {
          throw new OptimizerStateError(
            `optimizer state has no ${kind} for '${slot.param.name}': the checkpoint was written for other trainable parameters (different --stage / --trainable?)`,
          );
        }
        if (!shapesEqual(saved.shape, target.shape)) {
          throw new OptimizerStateError(`optimizer state ${kind}/${slot.param.name} has shape [${saved.shape}], the parameter has [${target.shape}]`);
        }
        tf.tidy(() => target.assign(tf.tensor(saved.data, saved.shape, 'float32')));
      }
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw new OptimizerStateError(`optimizer step must be a non-negative integer, got ${state.step}`);
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const slot of this.slots) {
      slot.m.dispose();
      slot.v.dispose();
    }
  }
}

let counter = 0;
function uniq(): number {
  return counter++;
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
