/**
 * Shared body of `cllama-train pretrain` and `cllama-train sft`. The flags come from the one flag table
 * (train/options.ts: CLI, --config keys and validation), registered through defineCommand's `setup`;
 * here they are only sorted into help groups.
 */
import * as path from 'node:path';
import { type CommanderCommand, defineCommand } from '@cllama/core';
import type { BackendChoice } from '../backend.js';
import { emitLaunchFolder } from '../launch/emit.js';
import { shellWord } from '../launch/plan.js';
import { addTrainOptions, resolveArgs, type TrainArgs, type TrainMode } from '../train/options.js';
import { dryRunPlan, formatPlan } from '../train/plan.js';
import { runTrainingSession } from '../train/session.js';
import { BACKEND_ARG, reportBackend } from './common.js';

/** The output flags (as on every CLI; --overwrite-output-dir is HF's --force) and the accepted-but-ignored flags of the Python scripts. */
const OUTPUT_FLAGS = new Set(['--json', '--no-progress', '--overwrite-output-dir']);

function groupTrainFlags(cmd: CommanderCommand): void {
  for (const option of cmd.options) {
    if (option.long && OUTPUT_FLAGS.has(option.long)) option.helpGroup('Output:');
    else if (option.description.startsWith('accepted for run_pt.sh')) option.helpGroup('Accepted and ignored (run_pt.sh / run_sft.sh compatibility):');
    else option.helpGroup('Options:');
  }
}

/** `--emit-launch`: writes the torchrun folder instead of training, and says how to run it. */
async function emitLaunch(args: TrainArgs, rest: Record<string, unknown>, backend: unknown, backendGiven: boolean): Promise<void> {
  const extraGiven = backendGiven ? { backend } : {};
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
}

async function train(args: TrainArgs, backend: BackendChoice): Promise<void> {
  const result = await runTrainingSession(args, { backend, onStart: reportBackend });
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
}

export function trainCommand(mode: TrainMode, description: string, example: string) {
  return defineCommand<Record<string, unknown>>({
    meta: { name: mode, description, example },
    args: { backend: BACKEND_ARG },
    setup: (cmd) => {
      addTrainOptions(cmd, mode);
      groupTrainFlags(cmd);
    },
    run: async ({ args: flags, given }) => {
      const { backend, ...rest } = flags;
      const args = await resolveArgs(mode, rest);
      if (args.emitLaunch) return emitLaunch(args, rest, backend, given('backend'));
      for (const flag of args.ignored)
        console.error(`cllama-train: --${flag} has no effect here (DeepSpeed / fp16 / DDP setting of the Python scripts); ignored`);
      if (args.dryRun) {
        const plan = await dryRunPlan(args);
        console.log(args.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
        return;
      }
      await train(args, backend as BackendChoice);
    },
  });
}
