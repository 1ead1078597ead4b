import { PACKAGE_NAME } from './index.js';

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: cllama-crawl <command> [options]\n\n${PACKAGE_NAME}: Self-instruct data crawler for any OpenAI-compatible chat-completions server: resumable, rate-limited, robust parsing.`);
  process.exit(0);
}
console.error(`cllama-crawl: unknown command '${args[0]}'. Run 'cllama-crawl --help'.`);
process.exit(2);
