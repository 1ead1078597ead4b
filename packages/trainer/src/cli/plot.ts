/**
 * `cllama-train plot <output-dir>`: draws training_plot.svg from the folder's metrics.jsonl — for runs
 * trained elsewhere (train.py of `--emit-launch` writes metrics.jsonl in our format but no plot), so
 * the recipe report shows their curves like ours. Written atomically; nothing else is touched.
 *
 * Memory is bounded whatever the files' sizes: metrics.jsonl is streamed line by line into the plot's
 * downsampling envelope (train/plot.ts), and max_steps is found by scanning trainer_state.json in
 * chunks (HF's sorts its keys, so max_steps comes after a log history that may be megabytes long).
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { defineCommand, writeFileAtomic } from '@cllama/core';
import { forEachMetric, METRICS_FILE, MetricsFileError } from '../train/metrics.js';
import { renderPlotData, TrainingPlotData } from '../train/plot.js';
import { UsageError } from './common.js';

const MAX_STEPS_RE = /"(?:max_steps|maxSteps)"\s*:\s*(\d+)/;

/** max_steps of trainer_state.json, HF's (max_steps) or ours (maxSteps); undefined when absent. Reads in chunks. */
async function maxStepsOf(dir: string): Promise<number | undefined> {
  try {
    let tail = '';
    for await (const chunk of createReadStream(path.join(dir, 'trainer_state.json'), { encoding: 'utf8' }) as AsyncIterable<string>) {
      const text = tail + chunk;
      const m = MAX_STEPS_RE.exec(text);
      if (m) {
        const n = Number(m[1]);
        return Number.isSafeInteger(n) && n > 0 ? n : undefined;
      }
      tail = text.slice(-64); // a key split over two chunks
    }
  } catch {
    // no (readable) trainer_state.json: the x axis ends at the last step logged
  }
  return undefined;
}

export const plotCommand = defineCommand<{ outputDir: string; title?: string }>({
  meta: {
    name: 'plot',
    description: 'draw <output-dir>/training_plot.svg from its metrics.jsonl (e.g. after a train.py run of --emit-launch)',
    example: 'cllama-train plot sft_output/ --title "SFT, 7B"',
  },
  args: {
    'output-dir': { type: 'positional', description: 'a training output folder with metrics.jsonl' },
    title: { type: 'string', valueHint: 'text', description: 'chart title (default: the folder name)' },
  },
  run: async ({ args: { outputDir: dir, title } }) => {
    const file = path.join(dir, METRICS_FILE);
    const data = new TrainingPlotData();
    await forEachMetric(file, (entry, line) => {
      if (typeof entry.step !== 'number' || !Number.isFinite(entry.step)) throw new MetricsFileError(`${file}:${line}: no numeric "step"; nothing to plot`);
      data.add(entry);
    }).catch((err: Error) => {
      if (err instanceof MetricsFileError) throw err;
      throw new UsageError(`cannot read ${file} (${err.message}); give a training output folder`);
    });
    if (data.entries === 0) throw new UsageError(`${file} has no metric lines with a step; nothing to plot`);
    const out = path.join(dir, 'training_plot.svg');
    await writeFileAtomic(out, renderPlotData(data, { title: title ?? path.basename(path.resolve(dir)), maxSteps: await maxStepsOf(dir) }));
    console.log(`wrote ${out} (${data.entries} metric lines)`);
  },
});
