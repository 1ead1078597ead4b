// Preloaded (node --import) into a crawler child by test/helpers/cli.ts: at exit, writes the process's
// peak resident set size in KiB (getrusage ru_maxrss) to $CLLAMA_TEST_PEAK_RSS_FILE.
import { writeFileSync } from 'node:fs';

const file = process.env.CLLAMA_TEST_PEAK_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
