/**
 * The `cllama-tokenizer` program. Each subcommand lives in its own file under src/cli/ and exports
 * a `register(program)` function; adding a command is one import + one line in COMMANDS.
 */
import { Command } from 'commander';
import { register as registerCompare } from './compare.js';
import { register as registerEncode } from './encode.js';
import { register as registerInspect } from './inspect.js';
import { register as registerMerge } from './merge.js';
import { register as registerTrain } from './train.js';

type RegisterCommand = (program: Command) => void;

const COMMANDS: RegisterCommand[] = [registerMerge, registerEncode, registerInspect, registerCompare, registerTrain];

export function createProgram(): Command {
  const program = new Command('cllama-tokenizer').description(
    'SentencePiece vocabulary merging, inspection and Hugging Face tokenizer export for LLaMA vocabulary expansion.',
  );
  for (const register of COMMANDS) register(program);
  return program;
}
