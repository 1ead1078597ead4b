import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { TokenizerMergeError } from '../proto.js';
import { loadTokenizer } from '../tokenizer.js';

export interface EncodeCommandOptions {
  model: string;
  text?: string;
  file?: string;
  pieces?: boolean;
  json?: boolean;
  bos?: boolean;
  eos?: boolean;
}

/** `cllama-tokenizer encode`: one output line per input line (ids or pieces, or JSON). */
export async function runEncode(opts: EncodeCommandOptions, print: (line: string) => void = console.log): Promise<void> {
  if ((opts.text === undefined) === (opts.file === undefined)) {
    throw new TokenizerMergeError('pass exactly one of --text <t> or --file <f>');
  }
  let lines: string[];
  if (opts.text !== undefined) {
    lines = [opts.text];
  } else {
    let content: string;
    try {
      content = await fs.readFile(opts.file as string, 'utf8');
    } catch {
      throw new TokenizerMergeError(`cannot read ${opts.file}; pass a UTF-8 text file`);
    }
    lines = content.split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
  }
  const tok = await loadTokenizer(opts.model);
  for (const line of lines) {
    const ids = tok.encode(line, { addBos: opts.bos, addEos: opts.eos });
    const pieces = ids.map((id) => tok.idToPiece(id));
    if (opts.json) print(JSON.stringify(opts.pieces ? { text: line, ids, pieces } : { text: line, ids }));
    else print(opts.pieces ? pieces.join(' ') : ids.join(' '));
  }
}

export function register(program: Command): void {
  program
    .command('encode')
    .description('encode text with a SentencePiece model (SentencePiece semantics)')
    .requiredOption('--model <model>', '.model file or HF folder with tokenizer.model')
    .option('--text <text>', 'text to encode')
    .option('--file <file>', 'encode each line of a file')
    .option('--pieces', 'print pieces instead of ids')
    .option('--bos', 'prepend the BOS id')
    .option('--eos', 'append the EOS id')
    .option('--json', 'print one JSON object per line')
    .action(async (o: EncodeCommandOptions) => {
      await runEncode(o);
    });
}
