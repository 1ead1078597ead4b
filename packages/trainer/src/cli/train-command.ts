/** Shared body of `cllama-train pretrain` and `cllama-train sft`. */
import { Command } from 'commander';
import type { BackendChoice } from '../backend.js';
import { backendOption, reportBackend } from './common.js';
import { addTrainOptions, resolveArgs, type TrainMode } from '../train/options.js';
import { dryRunPlan, formatPlan } from '../train/plan.js';
import { runTrainingSession } from '../train/session.js';

export function trainCommand(mode: TrainMode, description: string): Command {
  const cmd = new Command(mode).description(description).addOption(backendOption());
  addTrainOptions(cmd, mode);
  cmd.action(async (flags: Record<string, unknown>) => {
    const { backend, ...rest } = flags;
    const args = await resolveArgs(mode, rest);
    for (const flag of args.ignored) console.error(`cllama-train: --${flag} has no effect here (DeepSpeed / fp16 / DDP setting of the Python scripts); ignored`);
    if (args.dryRun) {
      const plan = await dryRunPlan(args);
      console.log(args.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
      return;
    }
    const result = await runTrainingSession(args, { backend: backend as BackendChoice, onStart: reportBackend });
    const summary = {
      output_dir: result.outputDir,
      resumed_from: result.resumedFrom ?? null,
      steps: result.globalStep,
      train_examples: result.numTrainExamples,
      eval_examples: result.numEvalExamples,
      final_train_loss: result.stepLosses.at(-1)?.loss ?? null,
      eval_loss: result.evalLoss ?? null,
      eval_perplexity: result.evalLoss === undefined ? null : Math.exp(result.evalLoss),
      tokens_per_second: Number(result.tokensPerSecond.toFixed(1)),
    };
    console.log(args.json ? JSON.stringify(summary) : Object.entries(summary).map(([k, v]) => `${k}: ${v}`).join('\n'));
  });
  return cmd;
}
