/** `cllama-train pretrain --stage 1|2`: continued pre-training (run_pt.sh / run_clm_pt_with_peft.py). */
import { trainCommand } from './train-command.js';

export const pretrainCommand = trainCommand(
  'pretrain',
  'continued pre-training on text files: --stage 1 trains embed_tokens only; --stage 2 trains LoRA + embed_tokens/lm_head (flags of run_pt.sh in kebab-case)',
  'cllama-train pretrain --stage 1 --model-name-or-path llama-7b-hf --tokenizer-name-or-path merged/ --dataset-dir zh_text/ --output-dir pt_stage1',
);
