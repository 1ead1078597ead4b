/**
 * `cllama-train plot <output-dir>`: draws training_plot.svg from the folder's metrics.jsonl — for runs
 * trained elsewhere (train.py of `--emit-launch` writes metrics.jsonl in our format but no plot), so
 * the recipe report shows their curves like ours. Written atomically; nothing else is touched.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { writeFileAtomic } from '@cllama/core';
import { METRICS_FILE, readMetrics } from '../train/metrics.js';
import { renderTrainingPlot } from '../train/plot.js';
import { UsageError } from './common.js';

/** max_steps of trainer_state.json, HF's (max_steps) or ours (maxSteps); undefined when absent. */
async function maxStepsOf(dir: string): Promise<number | undefined> {
  try {
    const state = JSON.parse(await fs.readFile(path.join(dir, 'trainer_state.json'), 'utf8')) as { max_steps?: unknown; maxSteps?: unknown };
    const n = Number(state.max_steps ?? state.maxSteps);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function plotCommand(): Command {
  return new Command('plot')
    .description('draw <output-dir>/training_plot.svg from its metrics.jsonl (e.g. after a train.py run of --emit-launch)')
    .argument('<output-dir>', 'a training output folder with metrics.jsonl')
    .option('--title <text>', 'chart title (default: the folder name)')
    .action(async (dir: string, flags: { title?: string }) => {
      const file = path.join(dir, METRICS_FILE);
      const history = await readMetrics(file).catch((err: Error) => {
        throw new UsageError(`cannot read ${file} (${err.message}); give a training output folder`);
      });
      if (history.length === 0 || !history.every((e) => Number.isFinite(e.step)))
        throw new UsageError(`${file} has no metric lines with a step; nothing to plot`);
      const out = path.join(dir, 'training_plot.svg');
      await writeFileAtomic(out, renderTrainingPlot(history, { title: flags.title ?? path.basename(path.resolve(dir)), maxSteps: await maxStepsOf(dir) }));
      console.log(`wrote ${out} (${history.length} metric lines)`);
    });
}
