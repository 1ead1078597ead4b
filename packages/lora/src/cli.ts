import { PACKAGE_NAME } from './index.js';

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: cllama-lora <command> [options]\n\n${PACKAGE_NAME}: Safetensors, Hugging Face checkpoint folders, PEFT-compatible LoRA adapters and adapter merging.`);
  process.exit(0);
}
console.error(`cllama-lora: unknown command '${args[0]}'. Run 'cllama-lora --help'.`);
process.exit(2);
