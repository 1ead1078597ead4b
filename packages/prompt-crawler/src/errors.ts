/** Typed errors; each message says what is wrong and what to do. */
import { CllamaError, EXIT_USAGE } from '@cllama/core';

export class CrawlerError extends CllamaError {
  constructor(
    message: string,
    readonly code: string,
    exitCode?: number,
  ) {
    super(message, exitCode === undefined ? undefined : { exitCode });
  }
}

/** A bad option or input file (`usage`: a bad setting the user gave, exit 2 in the CLI). */
export class ConfigError extends CrawlerError {
  constructor(message: string, opts: { usage?: boolean } = {}) {
    super(message, 'config', opts.usage ? EXIT_USAGE : undefined);
  }
}

/** The output file (or a side file) holds something other than what the crawler writes. */
export class OutputFileError extends CrawlerError {
  constructor(message: string) {
    super(message, 'output-file');
  }
}

/** Another crawler process holds the lock on the same --out. */
export class LockedError extends CrawlerError {
  constructor(message: string) {
    super(message, 'locked');
  }
}

/** The server refuses every request (bad key, no such model, …): retrying cannot help. */
export class FatalApiError extends CrawlerError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message, 'fatal-api');
  }
}

/** The failure streak passed --max-failure-streak or --max-failure-time: the server is not answering. */
export class TooManyFailuresError extends CrawlerError {
  constructor(message: string) {
    super(message, 'too-many-failures');
  }
}
