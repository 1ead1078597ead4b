/**
 * `cllama-train chat`: interactive; each line you type is sent as one Alpaca instruction (like the
 * original project's interactive mode, without history) and the answer streams back. A line the model
 * cannot take (longer than max_position_embeddings, …) is refused with one stderr line and the chat goes
 * on; with piped input the exit code is then EXIT_FAILURE (1), so a script sees that an answer is missing.
 */
import * as readline from 'node:readline';
import { defineCommand, EXIT_FAILURE } from '@cllama/core';
import { alpacaPrompt, GenerationError } from '../generate.js';
import { GENERATION_ARGS, generationOptions, loadForGeneration, streamCompletion, type ModelFlags, type SamplingFlags } from './generate.js';

export const chatCommand = defineCommand<ModelFlags & SamplingFlags>({
  meta: {
    name: 'chat',
    description: 'interactive chat with the Alpaca template (one instruction per line; Ctrl-D to quit)',
    example: 'cllama-train chat --model chinese-alpaca-7b --temperature 0.7 --top-p 0.9',
  },
  args: GENERATION_ARGS,
  run: async ({ args: flags }) => {
    const { model, tokenizer } = await loadForGeneration(flags);
    const opts = generationOptions(flags);
    const interactive = process.stdin.isTTY === true;
    const rl = readline.createInterface({ input: process.stdin, terminal: interactive });
    let refused = 0;
    if (interactive) process.stdout.write('> ');
    for await (const line of rl) {
      const instruction = line.trim();
      if (instruction !== '') {
        try {
          await streamCompletion(model, tokenizer, alpacaPrompt(instruction), opts, (t) => process.stdout.write(t));
          process.stdout.write('\n');
        } catch (err) {
          if (!(err instanceof GenerationError)) throw err;
          refused += 1;
          process.stderr.write(`cllama-train: ${err.message}\n`);
        }
      }
      if (interactive) process.stdout.write('> ');
    }
    model.dispose();
    if (refused > 0 && !interactive) return EXIT_FAILURE;
  },
});
