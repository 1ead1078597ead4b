/** cllama-crawl: the command-line front end of crawl(); each subcommand is one defineCommand module in src/cli/. */
import { defineCommand, runMain } from '@cllama/core';
import { redactor } from './cli/common.js';
import { crawlCommand } from './cli/crawl.js';
import { dryRunCommand } from './cli/dry-run.js';

void runMain(
  defineCommand({
    meta: {
      name: 'cllama-crawl',
      description:
        'Self-instruct data crawler for any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama). The API key is read from OPENAI_API_KEY only.',
      example: 'OPENAI_API_KEY=sk-… cllama-crawl --out items.jsonl --count 1000',
    },
    subCommands: [crawlCommand, dryRunCommand],
  }),
  { redact: (line) => redactor.redact(line) },
);
