/** `cllama-train pretrain --stage 1|2`: continued pre-training (run_pt.sh / run_clm_pt_with_peft.py). */
import type { Command } from 'commander';
import { trainCommand } from './train-command.js';

export function pretrainCommand(): Command {
  return trainCommand(
    'pretrain',
    'continued pre-training on text files: --stage 1 trains embed_tokens only; --stage 2 trains LoRA + embed_tokens/lm_head (flags of run_pt.sh in kebab-case)',
  );
}
