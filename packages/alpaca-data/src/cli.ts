import { PACKAGE_NAME } from './index.js';

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: cllama-data <command> [options]\n\n${PACKAGE_NAME}: Alpaca-format instruction data and pre-training data: readers, converters, mixer, tokenization, caching.`);
  process.exit(0);
}
console.error(`cllama-data: unknown command '${args[0]}'. Run 'cllama-data --help'.`);
process.exit(2);
