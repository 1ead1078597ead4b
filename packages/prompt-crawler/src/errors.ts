/** Typed errors; each message says what is wrong and what to do. */
import { CllamaError } from '@cllama/core';

export class CrawlerError extends CllamaError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A bad option or input file. */
export class ConfigError extends CrawlerError {
  constructor(message: string) {
    super(message, 'config');
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

/** Too many requests in a row failed permanently: something is wrong with the server or options. */
export class TooManyFailuresError extends CrawlerError {
  constructor(message: string) {
    super(message, 'too-many-failures');
  }
}
