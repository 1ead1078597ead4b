/** `cllama-crawl dry-run`: one generated prompt, without calling anything. */
import { defineCommand, integerFlag } from '@cllama/core';
import { buildPrompt } from '../prompt.js';
import { PROMPT_ARGS, type PromptFlags, promptSpecFrom, say } from './common.js';

export const dryRunCommand = defineCommand<PromptFlags & { index: number }>({
  meta: {
    name: 'dry-run',
    description: 'print one generated prompt without calling anything',
    example: 'cllama-crawl dry-run --lang en --seed 7 --index 3',
  },
  args: {
    index: { type: 'string', valueHint: 'n', description: 'request number whose prompt to print', parse: integerFlag('--index', { min: 0 }), default: 0 },
    ...PROMPT_ARGS,
  },
  run: ({ args: o }) => {
    say(buildPrompt(promptSpecFrom(o), o.seed, o.index).text);
  },
});
