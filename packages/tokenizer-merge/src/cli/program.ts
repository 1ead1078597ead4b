/**
 * The `cllama-tokenizer` program. Each subcommand lives in its own file under src/cli/ and exports
 * a `register(program)` function; adding a command is one import + one line in COMMANDS.
 */
import { Command } from 'commander';
import { register as registerInspect } from './inspect.js';

type RegisterCommand = (program: Command) => void;

const COMMANDS: RegisterCommand[] = [registerInspect];

export function createProgram(): Command {
  const program = new Command('cllama-tokenizer')
    .description(
      'SentencePiece vocabulary merging, inspection and Hugging Face tokenizer export for LLaMA vocabulary expansion.',
    )
    .showHelpAfterError(false)
    .configureOutput({ outputError: () => {} }); // errors are printed once, as one line, by runCli
  for (const register of COMMANDS) register(program);
  return program;
}
