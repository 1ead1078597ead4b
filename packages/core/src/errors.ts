/**
 * The error base class and the exit-code convention of every cllama CLI.
 *
 *   0  success (also --help and --version)
 *   1  failure: bad input data, a file that cannot be read or written, a run that failed
 *   2  usage error: unknown or missing flag, bad flag value, missing argument (commander's errors too)
 *   3  stopped early on purpose before the goal was reached (cllama-crawl --max-requests)
 *   130 interrupted by SIGINT (Ctrl-C) after finishing the writes in flight
 *
 * Every package's errors extend `CllamaError`, so a CLI (see `runCli`) and a library user can tell
 * "this tool refused or failed, with a message meant for a person" from a programming error.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INCOMPLETE = 3;
export const EXIT_INTERRUPTED = 130;

/** An error whose message is meant for the user: one line, saying what is wrong and what to do. */
export class CllamaError extends Error {
  /** The process exit code a CLI ends with when this error reaches it. */
  readonly exitCode: number = EXIT_FAILURE;

  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.exitCode !== undefined) this.exitCode = options.exitCode;
  }
}

/** A bad command line (flag values, missing arguments): exit code 2. */
export class UsageError extends CllamaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, exitCode: EXIT_USAGE });
  }
}

/**
 * One line for the user from any thrown value: newlines folded (a JSON parser's message may embed
 * the offending text), and a raw file-system error that does not name its file gets the path added.
 */
export function errorLine(err: unknown): string {
  let text: string;
  if (err instanceof CllamaError) text = err.message;
  else if (err instanceof Error) {
    const e = err as NodeJS.ErrnoException;
    text = e.message;
    if (typeof e.code === 'string' && typeof e.path === 'string' && !text.includes(e.path)) text = `${text} (${e.path})`;
  } else text = String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
