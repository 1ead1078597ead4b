/**
 * The trainer's error base class: every error @cllama/trainer throws for a person to read (a bad input,
 * a run that cannot go on) is a TrainerError, itself a @cllama/core CllamaError (one line; exit code 1,
 * or the exit code given: TrainConfigError's usage errors exit 2). Programming errors stay plain Errors.
 */
import { CllamaError } from '@cllama/core';

export class TrainerError extends CllamaError {}
