/**
 * cllama-train: one commander program; each subcommand lives in src/cli/<name>.ts and is added here
 * with one line.
 */
import { Command, CommanderError } from 'commander';
import { PACKAGE_NAME } from './index.js';
import { chatCommand } from './cli/chat.js';
import { generateCommand } from './cli/generate.js';
import { scoreCommand } from './cli/score.js';
import { pretrainCommand } from './cli/pretrain.js';
import { sftCommand } from './cli/sft.js';
import { plotCommand } from './cli/plot.js';

const program = new Command('cllama-train')
  .description(`${PACKAGE_NAME}: LLaMA in tfjs — HF checkpoints, scoring, generation, pre-training and SFT`)
  .showHelpAfterError()
  .exitOverride();

program.addCommand(scoreCommand());
program.addCommand(generateCommand());
program.addCommand(chatCommand());
program.addCommand(pretrainCommand());
program.addCommand(sftCommand());
program.addCommand(plotCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit with code 0; usage errors were already printed by commander.
    process.exit(err.exitCode);
  }
  console.error(`cllama-train: ${(err as Error).message}`);
  process.exit(1);
}
