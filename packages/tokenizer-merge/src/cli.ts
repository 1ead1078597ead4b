/** cllama-tokenizer: the program of src/cli/program.ts run by @cllama/core's runMain (one-line errors, exit codes). */
import { runMain } from '@cllama/core';
import { createProgram } from './cli/program.js';

void runMain(createProgram);
