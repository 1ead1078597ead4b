import { CommanderError } from 'commander';
import { createProgram } from './program.js';

/**
 * Run the CLI with `argv` (without node and script). Returns the exit code instead of exiting, so
 * tests can call it; every failure is reported as one line on stderr.
 */
export async function runCli(argv: string[]): Promise<number> {
  const program = createProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help / --version end with a CommanderError whose exitCode is 0
      if (err.exitCode === 0) return 0;
      process.stderr.write(`cllama-tokenizer: ${oneLine(err.message.replace(/^error: /, ''))}\n`);
      return err.exitCode || 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cllama-tokenizer: ${oneLine(message)}\n`);
    return 1;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
