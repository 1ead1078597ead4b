/**
 * Learning-rate schedules, matching transformers.get_scheduler (LambdaLR multipliers of the base
 * learning rate). The multiplier for optimizer step `s` (0-based, the number of steps already taken)
 * is what the scheduler returns before that step, as in torch: the first step of a warmed-up run uses
 * a learning rate of 0, exactly like HF Trainer.
 */
import { TrainerError } from '../errors.js';

export type SchedulerType = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';
export const SCHEDULER_TYPES: readonly SchedulerType[] = ['linear', 'cosine', 'constant', 'constant_with_warmup'];

export class ScheduleError extends TrainerError {
  override name = 'ScheduleError';
}

export interface ScheduleOptions {
  type: SchedulerType;
  baseLr: number;
  totalSteps: number;
  /** Used when warmupSteps is 0 (HF: warmup_steps wins when > 0). */
  warmupRatio?: number;
  warmupSteps?: number;
}

/** HF TrainingArguments.get_warmup_steps. */
export function warmupStepsFor(totalSteps: number, warmupSteps = 0, warmupRatio = 0): number {
  if (warmupSteps < 0 || !Number.isInteger(warmupSteps)) throw new ScheduleError(`--warmup-steps must be a non-negative integer, got ${warmupSteps}`);
  if (warmupRatio < 0 || warmupRatio > 1) throw new ScheduleError(`--warmup-ratio must be in [0, 1], got ${warmupRatio}`);
  return warmupSteps > 0 ? warmupSteps : Math.ceil(totalSteps * warmupRatio);
}

export class LrSchedule {
  readonly warmupSteps: number;

  constructor(readonly opts: ScheduleOptions) {
    if (!SCHEDULER_TYPES.includes(opts.type)) {
      throw new ScheduleError(`unknown --lr-scheduler-type '${opts.type}'; use one of ${SCHEDULER_TYPES.join(', ')}`);
    }
    if (!(opts.baseLr >= 0)) throw new ScheduleError(`--learning-rate must be >= 0, got ${opts.baseLr}`);
    if (!Number.isInteger(opts.totalSteps) || opts.totalSteps < 1)
      throw new ScheduleError(`total training steps must be a positive integer, got ${opts.totalSteps}`);
    this.warmupSteps = warmupStepsFor(opts.totalSteps, opts.warmupSteps ?? 0, opts.warmupRatio ?? 0);
  }

  /** The LambdaLR multiplier at step `step` (HF's lr_lambda). */
  multiplier(step: number): number {
    const { type, totalSteps } = this.opts;
    const w = this.warmupSteps;
    if (type === 'constant') return 1;
    if (step < w) return step / Math.max(1, w);
    switch (type) {
      case 'constant_with_warmup':
        return 1;
      case 'linear':
        return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - w));
      case 'cosine': {
        // get_cosine_schedule_with_warmup with num_cycles = 0.5
        const progress = (step - w) / Math.max(1, totalSteps - w);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
      }
    }
  }

  /** Learning rate used by the optimizer step that follows `stepsDone` completed steps. */
  lrAt(stepsDone: number): number {
    return this.opts.baseLr * this.multiplier(stepsDone);
  }
}
