/**
 * The CLI runner every cllama bin uses: it runs a commander program and turns every way it can end
 * into an exit code (see errors.ts) and at most ONE line on stderr, `<cli>: <reason>`:
 *
 * - --help / --version, or no arguments at all (the help on stdout): exit 0;
 * - commander's own usage errors (unknown flag, missing option or argument, bad choice): commander's
 *   `error: …` text is suppressed and re-printed as `<cli>: …`, exit 2;
 * - a `UsageError` thrown by a flag parser or an action: exit 2; any other `CllamaError`: its
 *   `exitCode` (1 unless it says otherwise); anything else: exit 1. Messages are folded onto one line.
 *
 * Set CLLAMA_DEBUG=1 to get the stack trace as well.
 *
 * The program is typed structurally (the methods used here) rather than with commander's class, so this
 * package does not pin the commander version the CLIs use.
 */
import { fsErrorReason, removeTemporaries } from './atomic.js';
import { CllamaError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, errorLine } from './errors.js';

/** The parts of a commander `Command` that `runCli` uses. */
export interface CliProgram {
  name(): string;
  readonly commands: readonly CliProgram[];
  exitOverride(): unknown;
  showHelpAfterError(display?: boolean): unknown;
  configureOutput(configuration: { outputError?: (str: string, write: (str: string) => void) => void }): unknown;
  parseAsync(argv: readonly string[], options: { from: 'user' }): Promise<unknown>;
  outputHelp(): void;
}

interface CommanderErrorLike {
  code: string;
  exitCode: number;
  message: string;
}

function isCommanderError(err: unknown): err is CommanderErrorLike {
  const e = err as Partial<CommanderErrorLike> | null;
  return typeof e === 'object' && e !== null && typeof e.code === 'string' && e.code.startsWith('commander.') && typeof e.exitCode === 'number';
}

function configure(cmd: CliProgram): void {
  cmd.exitOverride();
  cmd.showHelpAfterError(false);
  cmd.configureOutput({ outputError: () => {} });
  for (const sub of cmd.commands) configure(sub);
}

export interface RunCliOptions {
  /** Applied to the error line before it is printed (e.g. to hide an API key a server echoed). */
  redact?: (line: string) => string;
}

/**
 * Runs `program` with the user's arguments (without node and the script) and returns the exit code,
 * so tests can call it in-process. Call it after every subcommand is registered.
 */
export async function runCli(program: CliProgram, argv: readonly string[] = process.argv.slice(2), opts: RunCliOptions = {}): Promise<number> {
  const name = program.name();
  configure(program);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT_OK;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (isCommanderError(err)) {
      // help and version end with a commander error whose exit code is 0
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
      // a command with subcommands called without one: commander printed its help to stderr
      if (err.code === 'commander.help') return EXIT_USAGE;
      printError(name, err.message.replace(/^error: /, ''), err, opts);
      return EXIT_USAGE;
    }
    printError(name, errorLine(err), err, opts);
    return err instanceof CllamaError ? err.exitCode : EXIT_FAILURE;
  }
}

function printError(name: string, line: string, err: unknown, opts: RunCliOptions): void {
  const redact = opts.redact ?? ((s: string) => s);
  process.stderr.write(redact(`${name}: ${line.replace(/\s*\n\s*/g, ' ').trim()}\n`));
  if (process.env.CLLAMA_DEBUG && err instanceof Error && err.stack) process.stderr.write(redact(`${err.stack}\n`));
}

/**
 * The whole body of a bin: runs the program (or the function that builds it) and sets
 * process.exitCode. A closed stdout (`… | head`) ends the process quietly with exit 0; a stdout that
 * cannot be written (`> /dev/full`: ENOSPC, EIO) ends it with ONE line `<cli>: cannot write to
 * stdout: <reason>` and exit 1 — both at once, after removing the temporary files of any atomic
 * write in flight (nothing is renamed into place by a process that stops here).
 */
export function runMain(program: CliProgram | (() => CliProgram | Promise<CliProgram>), opts: RunCliOptions = {}): Promise<void> {
  let name = typeof program === 'function' ? 'cllama' : program.name();
  // Every failed write to stdout ends here: a stream reports a failed write (sync or not) as 'error'.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    removeTemporaries();
    if (err.code === 'EPIPE') process.exit(EXIT_OK);
    process.stderr.write(`${name}: cannot write to stdout: ${fsErrorReason(err)}\n`);
    process.exit(EXIT_FAILURE);
  });
  return (async () => {
    let code: number;
    try {
      const p = typeof program === 'function' ? await program() : program;
      name = p.name();
      code = await runCli(p, process.argv.slice(2), opts);
    } catch (err) {
      // building the program failed (should not happen; still one line)
      process.stderr.write(`${name}: ${errorLine(err)}\n`);
      code = EXIT_FAILURE;
    }
    process.exitCode = code;
  })();
}
