/** Shared body of `cllama-train pretrain` and `cllama-train sft`. */
import { Command } from 'commander';
import type { BackendChoice } from '../backend.js';
import { backendOption, reportBackend } from './common.js';
import { addTrainOptions, resolveArgs, type TrainMode } from '../train/options.js';
import { dryRunPlan, formatPlan } from '../train/plan.js';
import * as path from 'node:path';
import { emitLaunchFolder } from '../launch/emit.js';
import { shellWord } from '../launch/plan.js';
import { runTrainingSession } from '../train/session.js';

export function trainCommand(mode: TrainMode, description: string): Command {
  const cmd = new Command(mode).description(description).addOption(backendOption());
  addTrainOptions(cmd, mode);
  cmd.action(async (flags: Record<string, unknown>) => {
    const { backend, ...rest } = flags;
    const args = await resolveArgs(mode, rest);
    if (args.emitLaunch) {
      const extraGiven = cmd.getOptionValueSource('backend') === 'cli' ? { backend } : {};
      const { dir, plan, summary } = await emitLaunchFolder(args, { rawFlags: rest, extraGiven, command: ['cllama-train', ...process.argv.slice(2)] });
      for (const f of plan.notApplicableGiven) console.error(`cllama-train: ${f.flag} has no counterpart on torchrun (${f.note}); not carried into ${dir}`);
      const ev = summary.eval ? `, ${summary.eval.count} eval records` : '';
      console.log(
        args.json
          ? JSON.stringify({
              launch_dir: dir,
              train_kind: plan.trainKind,
              train_records: summary.train.count,
              train_tokens: summary.train.numTokens,
              eval_records: summary.eval?.count ?? 0,
              not_applicable: plan.notApplicableGiven.map((f) => f.flag),
            })
          : `wrote ${dir}: ${summary.train.count} train records (${summary.train.numTokens} tokens)${ev}, ${plan.trainKind} training\nrun it: bash ${shellWord(path.join(dir, 'launch.sh'))}   (see ${path.join(dir, 'README.md')})`,
      );
      return;
    }
    for (const flag of args.ignored)
      console.error(`cllama-train: --${flag} has no effect here (DeepSpeed / fp16 / DDP setting of the Python scripts); ignored`);
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
    console.log(
      args.json
        ? JSON.stringify(summary)
        : Object.entries(summary)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
    );
  });
  return cmd;
}
