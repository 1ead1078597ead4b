/**
 * cllama-train: each subcommand is one defineCommand module in src/cli/ (@cllama/core), listed here;
 * run by core's runMain (one-line errors, exit codes).
 */
import { defineCommand, runMain } from '@cllama/core';
import { chatCommand } from './cli/chat.js';
import { generateCommand } from './cli/generate.js';
import { plotCommand } from './cli/plot.js';
import { pretrainCommand } from './cli/pretrain.js';
import { scoreCommand } from './cli/score.js';
import { sftCommand } from './cli/sft.js';
import { PACKAGE_NAME } from './index.js';

await runMain(
  defineCommand({
    meta: {
      name: 'cllama-train',
      description: `${PACKAGE_NAME}: LLaMA in tfjs — HF checkpoints, scoring, generation, pre-training and SFT`,
      example: 'cllama-train sft --model-name-or-path pt_stage1 --tokenizer-name-or-path merged/ --dataset-dir sft_data/ --output-dir sft_lora',
    },
    subCommands: [scoreCommand, generateCommand, chatCommand, pretrainCommand, sftCommand, plotCommand],
  }),
);
