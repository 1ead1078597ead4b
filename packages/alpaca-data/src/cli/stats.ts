/** `cllama-data stats`: statistics of an Alpaca file (JSON/JSONL) or a tokenized dataset folder. */
import { promises as fsp } from 'node:fs';
import { defineCommand, UsageError } from '@cllama/core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { alpacaFileStats, tokenizedStats } from '../inspect.js';
import { openTokenizedDataset } from '../tokenized-dataset.js';
import { maxRecordBytes } from './common.js';

interface StatsFlags {
  path: string;
  tokenizer?: string;
  maxRecordBytes: number;
  json?: boolean;
}

async function datasetStats(dir: string, json: boolean): Promise<void> {
  const ds = await openTokenizedDataset(dir);
  try {
    const s = tokenizedStats(ds);
    if (json) {
      console.log(JSON.stringify(s, null, 2));
      return;
    }
    console.log(
      `${dir}: ${s.kind} dataset, ${s.count} records, ${s.numTokens} tokens (${s.trainedTokens} trained), length min ${s.minLength} / mean ${s.meanLength} / max ${s.maxLength}`,
    );
    for (const h of s.histogram) console.log(`  ${h.bucket.padStart(10)} tokens: ${h.count}`);
  } finally {
    ds.close();
  }
}

async function fileStats(file: string, o: StatsFlags): Promise<void> {
  const tok = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
  const s = await alpacaFileStats(file, tok, { maxRecordBytes: o.maxRecordBytes });
  if (o.json) {
    console.log(JSON.stringify(s, null, 2));
    return;
  }
  console.log(
    `${file}: ${s.records} records (${s.withInput} with input), ${s.invalid} invalid, ${s.duplicatesExact} exact + ${s.duplicatesNear} near duplicates`,
  );
  for (const k of ['instruction', 'input', 'output'] as const) {
    const c = s.chars[k];
    console.log(`  ${k.padEnd(11)} chars: mean ${c.mean}, p50 ${c.p50}, p90 ${c.p90}, max ${c.max}`);
  }
  console.log(`  example ${s.unit}: mean ${s.length.mean}, p50 ${s.length.p50}, p90 ${s.length.p90}, max ${s.length.max}`);
  for (const h of s.histogram) console.log(`  ${h.bucket.padStart(10)} ${s.unit}: ${h.count}`);
  const drops = Object.entries(s.wouldDrop);
  console.log(`  cleaning would drop: ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  for (const e of s.errors) console.log(`  invalid: ${e}`);
}

export const statsCommand = defineCommand<StatsFlags>({
  meta: {
    name: 'stats',
    description: 'statistics of an Alpaca file (JSON/JSONL) or a tokenized dataset folder',
    example: 'cllama-data stats mixed.jsonl --tokenizer merged/',
  },
  args: {
    path: { type: 'positional', description: 'file or folder' },
    tokenizer: { type: 'string', valueHint: 'path', description: 'lengths in tokens (Alpaca files)' },
    'max-record-bytes': maxRecordBytes('Alpaca files: count a record longer than this as invalid, without reading it whole (K/M/G suffixes)'),
    json: { type: 'boolean', description: 'print one JSON object' },
  },
  run: async ({ args: o }) => {
    const st = await fsp.stat(o.path).catch(() => {
      throw new UsageError(`${o.path} not found`);
    });
    if (st.isDirectory()) await datasetStats(o.path, !!o.json);
    else await fileStats(o.path, o);
  },
});
