// One error base class for the package: every error @cllama/prompt-crawler exports is a CrawlerError (and so a CllamaError).
import { CllamaError, EXIT_USAGE } from '@cllama/core';
import { describe, expect, it } from 'vitest';
import * as crawler from '../src/index.js';

describe('CrawlerError', () => {
  it('is the base of every exported error class', () => {
    const classes = Object.entries(crawler).filter(([name]) => name.endsWith('Error'));
    expect(classes.map(([name]) => name).sort()).toEqual([
      'ConfigError',
      'CrawlerError',
      'FatalApiError',
      'LockedError',
      'OutputFileError',
      'TooManyFailuresError',
    ]);
    for (const [name, E] of classes) {
      const e = new (E as new (...a: string[]) => Error)('x', 'code');
      expect(e, name).toBeInstanceOf(crawler.CrawlerError);
      expect(e, name).toBeInstanceOf(CllamaError);
    }
    expect(new crawler.ConfigError('x', { usage: true }).exitCode).toBe(EXIT_USAGE);
  });
});
