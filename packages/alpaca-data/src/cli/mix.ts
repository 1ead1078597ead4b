/** `cllama-data mix`: sources mixed by count, cleaned and de-duplicated, reproducibly from a seed. */
import { defineCommand, integerFlag } from '@cllama/core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { formatMixReport, mixSources, parseSourceSpec } from '../mixer.js';
import { checkOutput } from '../outputs.js';
import { maxRecordBytes, RECORD_FLAGS, warner, write } from './common.js';

interface MixFlags {
  source: string[];
  seed: number;
  out: string;
  report?: string;
  force?: boolean;
  replacement?: boolean;
  dedupe: boolean;
  shuffle: boolean;
  dropRefusals: boolean;
  maxOutputChars: number;
  maxPromptChars: number;
  tokenizer?: string;
  maxRecordBytes: number;
  strict?: boolean;
  quiet?: boolean;
}

export const mixCommand = defineCommand<MixFlags>({
  meta: {
    name: 'mix',
    description: 'mix sources with per-source counts, cleaning and de-duplication, reproducibly from a seed',
    example: 'cllama-data mix --source alpaca_zh=alpaca_zh.jsonl:20K --source pclue=pclue.jsonl:10K --seed 42 --out mixed.jsonl',
  },
  args: {
    source: {
      type: 'string',
      valueHint: 'name=file:count',
      description: 'a source and how many records to take (repeatable; K/M suffixes)',
      required: true,
      repeatable: true,
    },
    seed: { type: 'string', valueHint: 'n', description: 'random seed', parse: integerFlag('--seed'), required: true },
    out: { type: 'string', valueHint: 'file', description: 'output .jsonl (written atomically)', required: true },
    report: { type: 'string', valueHint: 'file', description: 'write the Markdown report here (and print it otherwise)' },
    force: { type: 'boolean', description: 'replace an existing --out / --report (never a source)' },
    replacement: { type: 'boolean', description: 'sample with replacement (fill counts larger than a source)' },
    'no-dedupe': { type: 'boolean', description: 'keep exact and near duplicates' },
    'no-shuffle': { type: 'boolean', description: 'write in source order (streamed) instead of shuffled (in memory)' },
    'no-drop-refusals': { type: 'boolean', description: 'keep "As an AI language model…" outputs' },
    'max-output-chars': {
      type: 'string',
      valueHint: 'n',
      description: 'drop outputs longer than this',
      parse: integerFlag('--max-output-chars', { min: 1 }),
      default: 4096,
    },
    'max-prompt-chars': {
      type: 'string',
      valueHint: 'n',
      description: 'drop instruction + input longer than this',
      parse: integerFlag('--max-prompt-chars', { min: 1 }),
      default: 4096,
    },
    tokenizer: { type: 'string', valueHint: 'path', description: 'measure lengths in tokens of the SFT example (a .model or an HF folder)' },
    'max-record-bytes': maxRecordBytes(),
    ...RECORD_FLAGS,
  },
  run: async ({ args: o }) => {
    const sources = o.source.map(parseSourceSpec);
    const inputs = sources.map((s) => s.file);
    // before the tokenizer is loaded: refused outputs cost nothing
    await checkOutput(o.out, inputs, { force: !!o.force });
    if (o.report) await checkOutput(o.report, [...inputs, o.out], { force: !!o.force, flag: '--report' });
    const tokenizer = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
    const w = warner(!!o.quiet);
    const report = await mixSources(sources, o.out, {
      seed: o.seed,
      replacement: o.replacement,
      dedupe: o.dedupe,
      shuffle: o.shuffle,
      strict: o.strict,
      tokenizer,
      clean: { maxOutputChars: o.maxOutputChars, maxPromptChars: o.maxPromptChars, dropRefusals: o.dropRefusals },
      onError: w.warn,
      report: o.report,
      force: !!o.force,
      maxRecordBytes: o.maxRecordBytes,
    });
    w.summary('records');
    if (!o.report) await write(formatMixReport(report));
    console.error(`wrote ${report.total.sampled} records to ${o.out}${o.report ? `, report ${o.report}` : ''}`);
  },
});
