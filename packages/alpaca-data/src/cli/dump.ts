/** `cllama-data dump`: records of a tokenized dataset as text (masked part in ⟦ ⟧) or as {input_ids, labels} lines. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { defineCommand, integerFlag, UsageError } from '@cllama/core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { dumpJsonLine, dumpText, type DecodingTokenizer } from '../inspect.js';
import { openTokenizedDataset, type TokenizedDataset } from '../tokenized-dataset.js';
import { write } from './common.js';

interface DumpFlags {
  dir: string;
  jsonl?: boolean;
  n?: number;
  start: number;
  tokenizer?: string;
}

/** The tokenizer of the text view: --tokenizer, else the one meta.json records (when it is still there). */
async function textTokenizer(ds: TokenizedDataset, flag: string | undefined): Promise<DecodingTokenizer | undefined> {
  const tokPath = flag ?? (typeof ds.meta.info.tokenizer === 'string' ? path.resolve(ds.meta.info.tokenizer) : undefined);
  if (!tokPath) return undefined;
  const exists = await fsp.stat(tokPath).then(
    () => true,
    () => false,
  );
  if (exists) return (await loadTokenizer(tokPath)) as DecodingTokenizer;
  if (flag) throw new UsageError(`--tokenizer ${tokPath} not found`);
  return undefined;
}

export const dumpCommand = defineCommand<DumpFlags>({
  meta: {
    name: 'dump',
    description: 'print records of a tokenized dataset: text with the masked part in ⟦ ⟧, or --jsonl {input_ids, labels}',
    example: 'cllama-data dump sft-data/ --n 3',
  },
  args: {
    dir: { type: 'positional', description: 'tokenized dataset folder' },
    jsonl: { type: 'boolean', description: 'one {"input_ids": [...], "labels": [...]} per line' },
    n: { type: 'string', valueHint: 'k', description: 'how many records (default all with --jsonl, 5 otherwise)', parse: integerFlag('--n', { min: 0 }) },
    start: { type: 'string', valueHint: 'i', description: 'first record', parse: integerFlag('--start', { min: 0 }), default: 0 },
    tokenizer: { type: 'string', valueHint: 'path', description: 'tokenizer for the text view (default: the one recorded in meta.json, if present)' },
  },
  run: async ({ args: o }) => {
    const ds = await openTokenizedDataset(o.dir);
    try {
      if (o.start < 0 || (o.start >= ds.length && ds.length > 0)) throw new UsageError(`--start ${o.start} is outside 0..${ds.length - 1}`);
      const end = Math.min(ds.length, o.start + (o.n ?? (o.jsonl ? ds.length : 5)));
      const tok = o.jsonl ? undefined : await textTokenizer(ds, o.tokenizer);
      const chunks: string[] = [];
      for (let i = o.start; i < end; i++) {
        chunks.push(o.jsonl ? `${dumpJsonLine(ds, i)}\n` : dumpText(ds, i, tok));
        if (chunks.length >= 256) {
          await write(chunks.join(''));
          chunks.length = 0;
        }
      }
      await write(chunks.join(''));
    } finally {
      ds.close();
    }
  },
});
