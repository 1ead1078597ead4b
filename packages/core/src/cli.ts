/**
 * The CLI runner every cllama bin uses: it runs a command (a `defineCommand` value, command.ts, or a
 * commander program) and turns every way it can end into an exit code (errors.ts's EXIT_* constants)
 * and at most ONE line on stderr, `<cli>: <reason>`:
 *
 * - --help / --version, or no arguments at all (the help on stdout): exit 0;
 * - commander's own usage errors (unknown flag, missing option or argument, bad choice): commander's
 *   `error: …` text is suppressed and re-printed as `<cli>: …`, exit 2;
 * - a `UsageError` thrown by a flag parser or a run: exit 2; any other `CllamaError`: its `exitCode`
 *   (1 unless it says otherwise); anything else: exit 1. Messages are folded onto one line;
 * - a run that returns a number: that exit code (cllama-crawl's EXIT_INCOMPLETE, EXIT_INTERRUPTED).
 *
 * Set CLLAMA_DEBUG=1 to get the stack trace as well.
 *
 * A commander program is typed structurally (the methods used here), so a test may hand in a program
 * built with any commander version.
 */
import { fsErrorReason, removeTemporaries } from './atomic.js';
import { buildCommand, type CommandDef, type RunResult } from './command.js';
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

function isCommandDef(x: CommandDef | CliProgram): x is CommandDef {
  return typeof (x as Partial<CommandDef>).meta === 'object';
}

/**
 * Runs `command` with the user's arguments (without node and the script) and returns the exit code,
 * so tests can call it in-process.
 */
export async function runCli(command: CommandDef | CliProgram, argv: readonly string[] = process.argv.slice(2), opts: RunCliOptions = {}): Promise<number> {
  const result: RunResult = {};
  const program: CliProgram = isCommandDef(command) ? buildCommand(command, result) : command;
  const name = program.name();
  configure(program);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT_OK;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (result.code !== undefined) return result.code;
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

type Runnable = CommandDef | CliProgram;

/**
 * The whole body of a bin: runs the command (or the function that builds it) and sets
 * process.exitCode. A closed stdout (`… | head`) ends the process quietly with exit 0; a stdout that
 * cannot be written (`> /dev/full`: ENOSPC, EIO) ends it with ONE line `<cli>: cannot write to
 * stdout: <reason>` and exit 1 — both at once, after removing the temporary files of any atomic
 * write in flight (nothing is renamed into place by a process that stops here).
 */
export function runMain(program: Runnable | (() => Runnable | Promise<Runnable>), opts: RunCliOptions = {}): Promise<void> {
  const nameOf = (p: Runnable) => (isCommandDef(p) ? p.meta.name : p.name());
  let name = typeof program === 'function' ? 'cllama' : nameOf(program);
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
      name = nameOf(p);
      code = await runCli(p, process.argv.slice(2), opts);
    } catch (err) {
      // building the program failed (should not happen; still one line)
      process.stderr.write(`${name}: ${errorLine(err)}\n`);
      code = EXIT_FAILURE;
    }
    process.exitCode = code;
  })();
}
