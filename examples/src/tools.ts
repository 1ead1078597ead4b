/**
 * Running the packages' CLIs from the recipe: each phase is a separate process, as a user would run
 * it (and each gets a fresh wasm heap). Output is streamed to the console and appended to the run's
 * log; `--json` commands are captured and parsed.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export type Cli = 'cllama-tokenizer' | 'cllama-train' | 'cllama-lora' | 'cllama-data';

const CLI_PACKAGES: Record<Cli, string> = {
  'cllama-tokenizer': '@cllama/tokenizer-merge',
  'cllama-train': '@cllama/trainer',
  'cllama-lora': '@cllama/lora',
  'cllama-data': '@cllama/alpaca-data',
};

/** The built bin of a workspace package (resolved like any installed dependency). */
export function cliPath(cli: Cli): string {
  const pkgJson = require.resolve(`${CLI_PACKAGES[cli]}/package.json`);
  const bin = (require(pkgJson) as { bin: Record<string, string> }).bin[cli];
  return path.join(path.dirname(pkgJson), bin);
}

export class CliFailedError extends Error {
  override name = 'CliFailedError';
}

export interface RunOptions {
  /** Capture stdout (for --json) instead of streaming it. */
  capture?: boolean;
  /** Append a transcript here. */
  logFile?: string;
  quiet?: boolean;
}

export function runCli(cli: Cli, args: string[], opts: RunOptions = {}): Promise<string> {
  const line = `$ ${cli} ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
  if (!opts.quiet) console.log(line);
  if (opts.logFile) appendFileSync(opts.logFile, `${line}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(cli), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      stdout += s;
      if (opts.logFile) appendFileSync(opts.logFile, s);
      if (!opts.capture && !opts.quiet) process.stdout.write(s);
    });
    child.stderr.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      stderr += s;
      if (opts.logFile) appendFileSync(opts.logFile, s);
      if (!opts.quiet) process.stderr.write(s);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else {
        const why = stderr.trim().split('\n').slice(-3).join(' | ') || `exit ${code ?? signal}`;
        reject(new CliFailedError(`${cli} ${args[0]} failed: ${why}`));
      }
    });
  });
}

export async function runCliJson<T>(cli: Cli, args: string[], opts: RunOptions = {}): Promise<T> {
  const out = await runCli(cli, [...args, '--json'], { ...opts, capture: true });
  // Some commands log a line before the JSON object: take the JSON from its first brace.
  const start = out.indexOf('{');
  if (start < 0) throw new CliFailedError(`${cli} ${args[0]}: no JSON in its output`);
  return JSON.parse(out.slice(start)) as T;
}
