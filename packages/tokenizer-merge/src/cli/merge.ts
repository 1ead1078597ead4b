import path from 'node:path';
import { readSampleLines } from '../agreement.js';
import { defineCommand, realTarget, writeFolderAtomic } from '@cllama/core';
import { mergeTokenizers, type MergeTokenizerResult } from '../merge-tokenizer.js';
import { TokenizerMergeError, readModelProto, resolveModelPath } from '../proto.js';

export interface MergeCommandOptions {
  base: string;
  add: string[];
  out: string;
  /** string: pad token text; false: --no-pad. */
  pad?: string | false;
  distinctScores?: boolean;
  sampleFile?: string;
  /** false: --no-check (skip the agreement measurement). */
  check?: boolean;
  force?: boolean;
  json?: boolean;
}

const n = (x: number) => x.toLocaleString('en-US');

/** `cllama-tokenizer merge`: returns what it printed, for tests. */
export async function runMerge(opts: MergeCommandOptions, print: (line: string) => void = console.log): Promise<MergeTokenizerResult> {
  if (!opts.add || opts.add.length === 0) {
    throw new TokenizerMergeError('nothing to add: pass at least one --add <model>');
  }
  if (opts.add.some((a) => a.trim() === '')) {
    throw new TokenizerMergeError('--add got an empty path; pass the .model file (or HF folder) whose pieces to add');
  }
  if (opts.base.trim() === '') throw new TokenizerMergeError('--base got an empty path; pass the base .model file or HF folder');
  if (opts.out.trim() === '') throw new TokenizerMergeError('--out got an empty path; pass the output folder');
  await refuseInputAsOutput(opts.out, [opts.base, ...opts.add]);
  const basePath = await resolveModelPath(opts.base);
  const base = await readModelProto(opts.base);
  const added = [];
  for (const file of opts.add) added.push(await readModelProto(file));
  const sampleLines = opts.check === false ? undefined : await readSampleLines(opts.sampleFile);
  const padToken = opts.pad === false ? null : (opts.pad ?? '[PAD]');
  const result = await mergeTokenizers(base, added, { distinctScores: opts.distinctScores, padToken, sampleLines });
  await writeFolderAtomic(opts.out, result.files as unknown as Record<string, Uint8Array | string>, { force: opts.force });

  const { stats } = result;
  if (opts.json) {
    print(
      JSON.stringify(
        {
          out: opts.out,
          basePieces: stats.basePieces,
          added: stats.added.map((a, i) => ({ model: opts.add[i], ...a })),
          mergedPieces: stats.mergedPieces,
          padToken,
          vocabSize: result.vocabSize,
          distinctScores: !!opts.distinctScores,
          unreachable: { count: result.unreachable.length, examples: result.unreachable.slice(0, 10) },
          agreement: result.agreement && { ...result.agreement, examples: result.agreement.examples.slice(0, 2) },
        },
        null,
        2,
      ),
    );
    return result;
  }
  print(`base:    ${basePath}: ${n(stats.basePieces)} pieces`);
  stats.added.forEach((a, i) => print(`add:     ${opts.add[i]}: ${n(a.pieces)} pieces, ${n(a.appended)} new`));
  print(
    `merged:  ${n(stats.mergedPieces)} pieces` +
      (padToken !== null && result.vocabSize > stats.mergedPieces ? ` (+ pad ${padToken}: ${n(result.vocabSize)})` : '') +
      (opts.distinctScores ? ', added pieces with distinct scores' : ', added pieces with score 0 (reference)'),
  );
  const appended = stats.mergedPieces - stats.basePieces;
  if (result.unreachable.length > 0) {
    print(
      `note:    ${n(result.unreachable.length)} of ${n(appended)} added pieces can never be produced by tokenizer.json's BPE ` +
        `(no split into two existing pieces), e.g. ${result.unreachable.slice(0, 5).join(', ')}`,
    );
  }
  const a = result.agreement;
  if (a) {
    const ratio = `${a.sentencePieceTokensPerChar.toFixed(4)} vs ${a.tokenizerJsonTokensPerChar.toFixed(4)} tokens/char`;
    if (a.disagreements > 0) {
      print(
        `WARNING: tokenizer.json and SentencePiece disagree on ${n(a.disagreements)} of ${n(a.lines)} sample lines (${ratio}). ` +
          `HF tools will tokenize differently from SentencePiece${opts.distinctScores ? '' : '; re-run with --distinct-scores to make them agree'}.`,
      );
    } else {
      print(`check:   tokenizer.json and SentencePiece agree on all ${n(a.lines)} sample lines (${ratio})`);
    }
  }
  print(`wrote:   ${path.resolve(opts.out)}/ (${Object.keys(result.files).join(', ')})`);
  return result;
}

interface MergeFlags {
  base: string;
  add: string[];
  out: string;
  padToken: string;
  pad: boolean;
  distinctScores?: boolean;
  sampleFile?: string;
  check: boolean;
  force?: boolean;
  json?: boolean;
}

export const mergeCommand = defineCommand<MergeFlags>({
  meta: {
    name: 'merge',
    description: 'merge SentencePiece vocabularies (reference rule) and write a Hugging Face tokenizer folder',
    example: 'cllama-tokenizer merge --base llama/ --add zh_sp.model --out merged/ --distinct-scores',
  },
  args: {
    base: { type: 'string', valueHint: 'model', description: 'base .model file or HF folder with tokenizer.model (e.g. LLaMA)', required: true },
    add: { type: 'string', valueHint: 'model', description: 'model whose new pieces are appended (repeatable)', required: true, repeatable: true, default: [] },
    out: { type: 'string', valueHint: 'dir', description: 'output folder (written atomically)', required: true },
    'pad-token': { type: 'string', valueHint: 'token', description: 'pad token added after the vocabulary', default: '[PAD]' },
    'no-pad': { type: 'boolean', description: 'add no pad token' },
    'distinct-scores': { type: 'boolean', description: 'give added pieces distinct scores in (-1, 0) so tokenizer.json agrees with SentencePiece' },
    'sample-file': { type: 'string', valueHint: 'file', description: 'lines to check SentencePiece vs tokenizer.json agreement on (default: built-in sample)' },
    'no-check': { type: 'boolean', description: 'skip the agreement check' },
    force: { type: 'boolean', description: 'replace a non-empty output folder' },
    json: { type: 'boolean', description: 'print one JSON object (the report)' },
  },
  run: async ({ args: o }) => {
    await runMerge({
      base: o.base,
      add: o.add,
      out: o.out,
      pad: o.pad === false ? false : o.padToken,
      distinctScores: o.distinctScores,
      sampleFile: o.sampleFile,
      check: o.check,
      force: o.force,
      json: o.json,
    });
  },
});

/** --out replacing the folder (or file) an input is read from is refused, --force or not. */
async function refuseInputAsOutput(out: string, inputs: string[]): Promise<void> {
  const target = await realTarget(out);
  for (const input of inputs) {
    const r = await realTarget(input);
    if (r === target || path.dirname(r) === target) {
      throw new TokenizerMergeError(`--out ${out} holds the input ${input}; write the merged tokenizer to another folder`);
    }
  }
}
