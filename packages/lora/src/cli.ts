/**
 * cllama-lora: merge PEFT LoRA adapters into an HF LLaMA folder, and describe an adapter. Each
 * subcommand is one defineCommand module in src/cli/; on error: one line on stderr, exit code 1
 * (2 for usage errors), through @cllama/core's runMain.
 */
import { defineCommand, runMain } from '@cllama/core';
import { infoCommand } from './cli/info.js';
import { mergeCommand } from './cli/merge.js';
import { tensorsCommand } from './cli/tensors.js';

void runMain(
  defineCommand({
    meta: {
      name: 'cllama-lora',
      description: 'Merge PEFT LoRA adapters into Hugging Face LLaMA folders (safetensors), and inspect adapters.',
      example: 'cllama-lora merge --base llama-7b-hf --lora pt_lora,sft_lora --out chinese-alpaca-7b',
    },
    subCommands: [mergeCommand, infoCommand, tensorsCommand],
  }),
);
