/**
 * cllama-train: one commander program; each subcommand lives in src/cli/<name>.ts and is added here
 * with one line.
 */
import { runMain } from '@cllama/core';
import { Command } from 'commander';
import { PACKAGE_NAME } from './index.js';
import { chatCommand } from './cli/chat.js';
import { generateCommand } from './cli/generate.js';
import { scoreCommand } from './cli/score.js';
import { pretrainCommand } from './cli/pretrain.js';
import { sftCommand } from './cli/sft.js';
import { plotCommand } from './cli/plot.js';

const program = new Command('cllama-train').description(`${PACKAGE_NAME}: LLaMA in tfjs — HF checkpoints, scoring, generation, pre-training and SFT`);

program.addCommand(scoreCommand());
program.addCommand(generateCommand());
program.addCommand(chatCommand());
program.addCommand(pretrainCommand());
program.addCommand(sftCommand());
program.addCommand(plotCommand());

await runMain(program);
