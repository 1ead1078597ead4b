import { promises as fs } from 'node:fs';
import { defineCommand, refuseSpecialFile } from '@cllama/core';
import { TokenizerMergeError } from '../proto.js';
import { loadTokenizer } from '../tokenizer.js';

export interface CompareRow {
  model: string;
  vocabSize: number;
  tokens: number;
  chars: number;
  tokensPerChar: number;
}

export interface CompareReport {
  file: string;
  lines: number;
  models: CompareRow[];
  /** tokens/char of the first model divided by that of each model (1 for the first). */
  ratioToFirst: number[];
}

/** Tokens per character (code point) of each model over the non-empty lines of a file. */
export async function compareModels(models: string[], file: string): Promise<CompareReport> {
  if (models.length < 1) throw new TokenizerMergeError('pass at least one --model');
  await refuseSpecialFile(file);
  let content: string;
  try {
    content = await fs.readFile(file, 'utf8');
  } catch {
    throw new TokenizerMergeError(`cannot read ${file}; pass a UTF-8 text file with one document per line`);
  }
  const lines = content.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new TokenizerMergeError(`${file} has no non-empty lines`);
  const chars = lines.reduce((sum, l) => sum + Array.from(l).length, 0);
  const rows: CompareRow[] = [];
  for (const model of models) {
    const tok = await loadTokenizer(model);
    let tokens = 0;
    for (const line of lines) tokens += tok.encode(line).length;
    rows.push({ model, vocabSize: tok.vocabSize, tokens, chars, tokensPerChar: tokens / chars });
  }
  return {
    file,
    lines: lines.length,
    models: rows,
    ratioToFirst: rows.map((r) => rows[0].tokensPerChar / r.tokensPerChar),
  };
}

export function formatCompare(r: CompareReport): string {
  const out = [`${r.file}: ${r.lines.toLocaleString('en-US')} lines, ${r.models[0].chars.toLocaleString('en-US')} characters`];
  r.models.forEach((m, i) => {
    out.push(
      `${m.tokensPerChar.toFixed(4)} tokens/char  ${m.tokens.toLocaleString('en-US').padStart(12)} tokens  vocab ${m.vocabSize.toLocaleString('en-US').padStart(7)}  ${m.model}` +
        (i > 0 ? `  (${r.ratioToFirst[i].toFixed(2)}× fewer tokens than the first)` : ''),
    );
  });
  return out.join('\n');
}

export const compareCommand = defineCommand<{ model: string[]; file: string; json?: boolean }>({
  meta: {
    name: 'compare',
    description: 'tokens per character of each model on a text file (one document per line)',
    example: 'cllama-tokenizer compare --model llama/tokenizer.model --model merged/ --file zh_heldout.txt',
  },
  args: {
    model: {
      type: 'string',
      valueHint: 'model',
      description: 'model (.model file or HF folder); repeat for each model',
      required: true,
      repeatable: true,
      default: [],
    },
    file: { type: 'string', valueHint: 'file', description: 'text file, one document per line', required: true },
    json: { type: 'boolean', description: 'print one JSON object' },
  },
  run: async ({ args }) => {
    const report = await compareModels(args.model, args.file);
    console.log(args.json ? JSON.stringify(report, null, 2) : formatCompare(report));
  },
});
