/** `cllama-train sft`: LoRA instruction fine-tuning on Alpaca data (run_sft.sh / run_clm_sft_with_peft.py). */
import { trainCommand } from './train-command.js';

export const sftCommand = trainCommand(
  'sft',
  'LoRA instruction fine-tuning on Alpaca-format .json files; --peft-path continues from an existing adapter (flags of run_sft.sh in kebab-case)',
  'cllama-train sft --model-name-or-path pt_stage1 --tokenizer-name-or-path merged/ --peft-path pt_lora --dataset-dir sft_data/ --output-dir sft_lora',
);
