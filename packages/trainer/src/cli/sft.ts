/** `cllama-train sft`: LoRA instruction fine-tuning on Alpaca data (run_sft.sh / run_clm_sft_with_peft.py). */
import type { Command } from 'commander';
import { trainCommand } from './train-command.js';

export function sftCommand(): Command {
  return trainCommand(
    'sft',
    'LoRA instruction fine-tuning on Alpaca-format .json files; --peft-path continues from an existing adapter (flags of run_sft.sh in kebab-case)',
  );
}
