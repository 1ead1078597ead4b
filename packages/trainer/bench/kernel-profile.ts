/**
 * A per-kernel time breakdown of training steps on the active tfjs backend: every kernel registered for
 * the backend is wrapped with a wall-clock timer, and its milliseconds and calls are summed per kernel
 * name and per phase (forward: while the model's loss is being computed; backward: after it, which
 * includes the gradient norm and AdamW). What the kernels do not account for — tfjs's tape and
 * disposal bookkeeping, garbage collection, JS between the kernels — is the step's wall time minus
 * their sum ("outside kernels").
 *
 * How this differs from tf.profile: tf.profile keeps every kernel's record (and reads every output's
 * values when asked for them) and cannot split forward from backward; this keeps two sums per name.
 * Kernels that call other kernels through the engine are counted as themselves only (the wrapper sees
 * the outer call; a nested call through tf ops would be counted twice, and the native kernels make none).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface KernelTimes {
  ms: number;
  calls: number;
}

export class KernelProfile {
  phase: 'forward' | 'backward' = 'backward';
  private current = new Map<string, KernelTimes>();
  private depth = 0;

  /** Wraps every kernel of `backend` (call once, after the backend is registered). */
  constructor(backend: string) {
    for (const k of tf.getKernelsForBackend(backend)) {
      const inner = k.kernelFunc;
      tf.unregisterKernel(k.kernelName, backend);
      tf.registerKernel({
        ...k,
        kernelFunc: ((args: Parameters<typeof inner>[0]) => {
          if (this.depth > 0) return inner(args);
          this.depth++;
          const t = performance.now();
          try {
            return inner(args);
          } finally {
            this.depth--;
            const key = `${this.phase}\t${k.kernelName}`;
            const e = this.current.get(key) ?? { ms: 0, calls: 0 };
            e.ms += performance.now() - t;
            e.calls++;
            this.current.set(key, e);
          }
        }) as typeof inner,
      });
    }
  }

  /** The sums since the last call ("phase\tkernel" → times), and a fresh start. */
  take(): Map<string, KernelTimes> {
    const r = this.current;
    this.current = new Map();
    return r;
  }
}

/** A printable table: the top kernels per phase with their share of the step. */
export function formatProfile(times: Map<string, KernelTimes>, stepMs: number, top = 14): string {
  const rows = [...times].map(([key, t]) => {
    const [phase, kernel] = key.split('\t') as [string, string];
    return { phase, kernel, ...t };
  });
  const lines: string[] = [];
  let kernelsMs = 0;
  for (const phase of ['forward', 'backward']) {
    const mine = rows.filter((r) => r.phase === phase).sort((a, b) => b.ms - a.ms);
    const sum = mine.reduce((a, r) => a + r.ms, 0);
    kernelsMs += sum;
    lines.push(`  ${phase}: ${sum.toFixed(0)} ms in ${mine.reduce((a, r) => a + r.calls, 0)} kernel calls`);
    for (const r of mine.slice(0, top)) {
      lines.push(
        `    ${r.kernel.padEnd(26)} ${r.ms.toFixed(0).padStart(7)} ms ${((100 * r.ms) / stepMs).toFixed(1).padStart(5)}%  ${String(r.calls).padStart(6)} calls`,
      );
    }
  }
  lines.push(`  outside kernels (tape, disposal, GC, JS): ${(stepMs - kernelsMs).toFixed(0)} ms ${((100 * (stepMs - kernelsMs)) / stepMs).toFixed(1)}%`);
  return lines.join('\n');
}
