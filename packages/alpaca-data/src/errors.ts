/**
 * Typed errors of @cllama/alpaca-data. Every message says what is wrong and what to do about it;
 * the CLI prints `message` on one line and exits non-zero.
 */
import { CllamaError } from '@cllama/core';

export class AlpacaDataError extends CllamaError {}

/** A record (or line) of an input file is unusable. `where` is e.g. `data.jsonl:12` or `data.json record 7`. */
export class RecordError extends AlpacaDataError {
  constructor(
    readonly file: string,
    readonly where: string,
    readonly problem: string,
  ) {
    super(`${file} ${where}: ${problem}`);
  }
}

/** A whole input file is unusable (not JSON, not an array, unreadable). */
export class InputFormatError extends AlpacaDataError {}

/** A tokenized dataset folder is missing, truncated, of an unknown version or otherwise inconsistent. */
export class TokenizedDatasetError extends AlpacaDataError {}

/** Bad arguments (options out of range, unknown names): the shared UsageError (exit code 2). */
export { UsageError } from '@cllama/core';
