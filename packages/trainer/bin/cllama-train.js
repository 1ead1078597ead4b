#!/usr/bin/env node
// The `cllama-train` command. This small file is committed so that `npm ci` links the command even before
// anything is built (npm links workspace bins at install time); it runs the built CLI, dist/cli.js.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('cllama-train: not built yet; run `npm run build` in the repository first\n');
  process.exit(1);
}
await import(cli.href);
