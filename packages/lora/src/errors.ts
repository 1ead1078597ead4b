/**
 * The error base class of @cllama/lora: every error this package throws on bad input (a safetensors
 * file, an HF folder, a PEFT adapter, a config, a merge that cannot be done) is a `LoraError`, itself
 * a `CllamaError` of @cllama/core, so a caller can catch the package's refusals in one place and the
 * CLI prints them as one line.
 */
import { CllamaError } from '@cllama/core';

export class LoraError extends CllamaError {}
