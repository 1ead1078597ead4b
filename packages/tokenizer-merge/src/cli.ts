/** cllama-tokenizer: the command of src/cli/program.ts run by @cllama/core's runMain (one-line errors, exit codes). */
import { runMain } from '@cllama/core';
import { tokenizerProgram } from './cli/program.js';

void runMain(tokenizerProgram);
