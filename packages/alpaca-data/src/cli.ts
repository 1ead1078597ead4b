/**
 * cllama-data: convert / mix / tokenize / dump / stats, each one defineCommand module in src/cli/.
 * Errors print one line and exit 1; usage errors exit 2 (@cllama/core's runMain); per-record
 * problems are warnings unless --strict.
 */
import { defineCommand, runMain } from '@cllama/core';
import { convertCommand } from './cli/convert.js';
import { dumpCommand } from './cli/dump.js';
import { mixCommand } from './cli/mix.js';
import { statsCommand } from './cli/stats.js';
import { tokenizeCommand } from './cli/tokenize.js';

void runMain(
  defineCommand({
    meta: {
      name: 'cllama-data',
      description: 'Alpaca-format instruction data and pre-training data: converters, mixer, tokenized cache (docs/alpaca-data.md)',
      example: 'cllama-data convert alpaca_data_zh.json --from alpaca --out alpaca_zh.jsonl',
    },
    subCommands: [convertCommand, mixCommand, tokenizeCommand, dumpCommand, statsCommand],
  }),
);
