/** `cllama-data tokenize`: Alpaca files (sft) or text files (pt) into a tokenized dataset folder. */
import { defineCommand, integerFlag } from '@cllama/core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { checkOutput } from '../outputs.js';
import { tokenizeFiles } from '../tokenize-files.js';
import { maxRecordBytes, RECORD_FLAGS, warner } from './common.js';

interface TokenizeFlags {
  kind: 'sft' | 'pt';
  tokenizer: string;
  input: string[];
  out: string;
  force?: boolean;
  maxSeqLength: number;
  blockSize: number;
  template?: string;
  maxRecordBytes: number;
  strict?: boolean;
  progress: boolean;
  quiet?: boolean;
}

export const tokenizeCommand = defineCommand<TokenizeFlags>({
  meta: {
    name: 'tokenize',
    description: 'tokenize Alpaca files (sft) or text files (pt) into a tokenized dataset folder',
    example: 'cllama-data tokenize --kind sft --tokenizer merged/ --input mixed.jsonl --out sft-data/',
  },
  args: {
    kind: { type: 'string', valueHint: 'kind', description: 'sft: instruction examples; pt: pre-training blocks', choices: ['sft', 'pt'], required: true },
    tokenizer: { type: 'string', valueHint: 'path', description: 'tokenizer: a .model file or an HF folder with tokenizer.model', required: true },
    input: { type: 'string', valueHint: 'file...', description: 'input files (sft: JSON/JSONL Alpaca; pt: .txt lines or .jsonl {"text"})', required: true },
    out: { type: 'string', valueHint: 'dir', description: 'output folder (written atomically)', required: true },
    force: { type: 'boolean', description: 'replace an existing tokenized dataset at --out' },
    'max-seq-length': {
      type: 'string',
      valueHint: 'n',
      description: 'sft: truncate examples to this many tokens',
      parse: integerFlag('--max-seq-length', { min: 1 }),
      default: 512,
    },
    'block-size': { type: 'string', valueHint: 'n', description: 'pt: tokens per block', parse: integerFlag('--block-size', { min: 1 }), default: 512 },
    template: { type: 'string', valueHint: 'name|text', description: 'sft prompt: chinese-alpaca (default), stanford-alpaca, or a text with {instruction}' },
    'max-record-bytes': maxRecordBytes(),
    'no-progress': { type: 'boolean', description: 'no progress counter' },
    ...RECORD_FLAGS,
  },
  run: async ({ args: o }) => {
    await checkOutput(o.out, [...o.input, o.tokenizer], { force: !!o.force, folder: true });
    const tokenizer = await loadTokenizer(o.tokenizer);
    const w = warner(!!o.quiet);
    const t0 = performance.now();
    const unit = o.kind === 'sft' ? 'records' : 'lines';
    const tty = process.stderr.isTTY && o.progress && !o.quiet;
    const s = await tokenizeFiles({
      kind: o.kind,
      inputs: o.input,
      out: o.out,
      tokenizer,
      tokenizerPath: o.tokenizer,
      maxSeqLength: o.maxSeqLength,
      blockSize: o.blockSize,
      template: o.template,
      strict: o.strict,
      maxRecordBytes: o.maxRecordBytes,
      onError: w.warn,
      onProgress: tty ? (chars, n) => process.stderr.write(`\r${n} ${unit}, ${(chars / 1e6).toFixed(1)} M chars`) : undefined,
    });
    if (tty) process.stderr.write('\n');
    w.summary(unit);
    const sec = (performance.now() - t0) / 1000;
    console.log(
      `${s.meta.count} ${o.kind === 'sft' ? 'examples' : `blocks of ${o.blockSize}`} (${s.meta.numTokens} tokens) from ${s.read} ${unit} in ${sec.toFixed(1)} s` +
        ` (${(s.chars / sec / 1e6).toFixed(2)} M chars/s)${s.truncated ? `, ${s.truncated} truncated to ${o.maxSeqLength}` : ''}${s.skipped ? `, ${s.skipped} skipped` : ''} → ${o.out}`,
    );
  },
});
