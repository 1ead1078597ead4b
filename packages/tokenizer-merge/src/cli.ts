import { PACKAGE_NAME } from './index.js';

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: cllama-tokenizer <command> [options]\n\n${PACKAGE_NAME}: SentencePiece vocabulary training, merging and Hugging Face tokenizer export for LLaMA vocabulary expansion.`);
  process.exit(0);
}
console.error(`cllama-tokenizer: unknown command '${args[0]}'. Run 'cllama-tokenizer --help'.`);
process.exit(2);
