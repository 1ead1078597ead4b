import { PACKAGE_NAME } from './index.js';

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: cllama-train <command> [options]\n\n${PACKAGE_NAME}: LLaMA in tfjs: HF checkpoints, forward/backward, generation, and the pre-training / SFT training loop.`);
  process.exit(0);
}
console.error(`cllama-train: unknown command '${args[0]}'. Run 'cllama-train --help'.`);
process.exit(2);
