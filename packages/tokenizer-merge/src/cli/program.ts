/**
 * The `cllama-tokenizer` command: each subcommand is one module under src/cli/ exporting one
 * `defineCommand` value (@cllama/core); adding a command is one import + one entry in subCommands.
 */
import { defineCommand } from '@cllama/core';
import { compareCommand } from './compare.js';
import { encodeCommand } from './encode.js';
import { inspectCommand } from './inspect.js';
import { mergeCommand } from './merge.js';
import { trainCommand } from './train.js';

export const tokenizerProgram = defineCommand({
  meta: {
    name: 'cllama-tokenizer',
    description: 'SentencePiece vocabulary merging, inspection and Hugging Face tokenizer export for LLaMA vocabulary expansion.',
    example: 'cllama-tokenizer merge --base llama/ --add zh_sp.model --out merged/',
  },
  subCommands: [mergeCommand, encodeCommand, inspectCommand, compareCommand, trainCommand],
});

/** The program, for tests that run it in-process (`runCli(createProgram(), argv)`). */
export function createProgram() {
  return tokenizerProgram;
}
