/**
 * One command shape for every cllama CLI: `defineCommand({ meta, args, run, subCommands })`, the shape
 * of citty (unjs), built on commander. A command is plain data: its name and one-line description
 * (`meta`), its flags and positional arguments as one table (`args`), the function that runs it
 * (`run`), and its subcommands. Each subcommand of a CLI is one module exporting one defined command;
 * the bin is `runMain(defineCommand({ meta, subCommands: [...] }))` (cli.ts).
 *
 * Why commander underneath rather than citty itself: the CLIs' behaviour is pinned by tests and read by
 * users — commander's usage errors (`required option '--out <dir>' not specified`, `unknown option
 * '--bogus'`, `argument 'nope' is invalid. Allowed choices are …`), its `--no-x` negations, choices,
 * per-flag parsers, repeatable and variadic flags, hidden aliases, help groups, and its help layout.
 * citty has none of choices, per-flag parsers, hidden flags or help groups, and words its errors
 * differently, so adopting it would change every CLI's errors and help at once. This file keeps
 * commander as the parser and gives the packages citty's shape on top of it.
 *
 * The table: each key of `args` is the flag as typed, without its dashes (`out`, `max-new-tokens`,
 * `no-pad`), or the name of a positional argument (in the order written). `run` receives commander's
 * parsed values under their camelCase names (`maxNewTokens`; a `no-pad` flag sets `pad: false`), the
 * positional arguments under their own names, and `given(name)`: whether a value came from the command
 * line rather than a default. A `run` that returns a number ends the CLI with that exit code.
 *
 * Help follows one pattern on every CLI: `Usage:`, the one-line description, the flags grouped
 * ("Options:" for what the command works on, "Output:" for --force / --json / --jsonl / --quiet /
 * --no-progress, unless a flag names its own group), and one `Example:`.
 */
import { Command, Option } from 'commander';

interface ArgBase {
  description: string;
  /** Help heading the flag is listed under (default: "Output:" for the shared output flags, else "Options:"). */
  group?: string;
  /** Accepted but not listed in --help (an old spelling kept for users' scripts). */
  hidden?: boolean;
}

/** A switch: `--json`; a key `no-x` is commander's negation (`x` defaults to true, `--no-x` sets it false). */
export interface BooleanArg extends ArgBase {
  type: 'boolean';
}

/** A flag with a value: `--out <dir>`. */
export interface StringArg extends ArgBase {
  type: 'string';
  /** The value's name in help and in commander's messages: `dir` → `--out <dir>`; `file...` takes several values. */
  valueHint: string;
  /** The flag must be given (commander: "required option '--out <dir>' not specified"). */
  required?: boolean;
  /** The value may be left out (`--rouge [threshold]`): the flag alone gives `true`. */
  optionalValue?: boolean;
  default?: unknown;
  /** How help shows the default, when the value itself does not read well (`8M` for 8388608). */
  defaultText?: string;
  /** The values allowed (commander: "argument 'x' is invalid. Allowed choices are …"). */
  choices?: readonly string[];
  /** Turns the text into the value (throw a UsageError to refuse it); `previous` is the value so far. */
  parse?: (value: string, previous: unknown) => unknown;
  /** May be given several times; the values are collected into an array (in order). */
  repeatable?: boolean;
}

/** A positional argument: `inspect <model>`. */
export interface PositionalArg {
  type: 'positional';
  description: string;
  /** Default true (commander: "missing required argument 'model'"). */
  required?: boolean;
}

export type ArgDef = BooleanArg | StringArg | PositionalArg;
export type ArgsDef = Record<string, ArgDef>;

export interface CommandMeta {
  name: string;
  /** One line: what the command does (the summary in the parent's command list and the help's first line). */
  description: string;
  /** One command line shown under `Example:` in the help (without the `$ `). */
  example?: string;
  /** The subcommand that runs when the first argument names none (cllama-crawl's `crawl`). */
  isDefault?: boolean;
}

export interface CommandContext<A = Record<string, unknown>> {
  /** The parsed values: flags under commander's camelCase names, positional arguments under their own. */
  args: A;
  /** Whether `name` (camelCase) was given on the command line, as opposed to a default or left out. */
  given(name: string): boolean;
}

/** The commander command, for a flag table that registers itself on it (the trainer's options.ts). */
export type CommanderCommand = Command;

// biome-ignore lint/suspicious/noExplicitAny: the parsed values' type is the command's own business (each run declares it)
export interface CommandDef<A = any> {
  meta: CommandMeta;
  args?: ArgsDef;
  /** Registers flags from a table that already speaks commander (called after `args`). */
  setup?: (cmd: CommanderCommand) => void;
  /** Runs the command; a returned number (or a promise of one) is the exit code. */
  run?: (ctx: CommandContext<A>) => unknown;
  subCommands?: readonly CommandDef[];
}

/** Declares a command; returns it unchanged (typed), as citty's `defineCommand` does. */
// biome-ignore lint/suspicious/noExplicitAny: see CommandDef
export function defineCommand<A = any>(def: CommandDef<A>): CommandDef<A> {
  return def;
}

/** The flags every CLI shares, listed under "Output:" in help. */
const OUTPUT_FLAGS = new Set(['force', 'json', 'jsonl', 'quiet', 'no-progress']);

/** Where `run`'s exit code goes: read by runCli after parsing. */
export interface RunResult {
  code?: number;
}

function camelCase(key: string): string {
  return key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function collect(value: string, previous: unknown): unknown[] {
  return [...(Array.isArray(previous) ? previous : []), value];
}

function flagOption(key: string, arg: BooleanArg | StringArg): Option {
  const value = arg.type === 'boolean' ? '' : arg.optionalValue ? ` [${arg.valueHint}]` : ` <${arg.valueHint}>`;
  const option = new Option(`--${key}${value}`, arg.description);
  if (arg.hidden) option.hideHelp();
  option.helpGroup(arg.group ?? (OUTPUT_FLAGS.has(key) ? 'Output:' : 'Options:'));
  if (arg.type === 'boolean') return option;
  if (arg.choices) option.choices([...arg.choices]);
  const parse = arg.parse ?? (arg.repeatable ? collect : undefined);
  if (parse) option.argParser(parse);
  if (arg.default !== undefined) option.default(arg.default, arg.defaultText);
  if (arg.required) option.makeOptionMandatory();
  return option;
}

/** The commander command for `def` (and its subcommands); `result.code` receives what a `run` returns. */
export function buildCommand(def: CommandDef, result: RunResult = {}): Command {
  const cmd = new Command(def.meta.name).description(def.meta.description);
  const positionals: string[] = [];
  for (const [key, arg] of Object.entries(def.args ?? {})) {
    if (arg.type === 'positional') {
      cmd.argument(arg.required === false ? `[${key}]` : `<${key}>`, arg.description);
      positionals.push(key);
    } else cmd.addOption(flagOption(key, arg));
  }
  def.setup?.(cmd);
  if (def.meta.example) cmd.addHelpText('after', `\nExample:\n  $ ${def.meta.example}`);
  for (const sub of def.subCommands ?? []) cmd.addCommand(buildCommand(sub, result), { isDefault: sub.meta.isDefault });
  const run = def.run;
  if (run) {
    cmd.action(async (...values: unknown[]) => {
      const args: Record<string, unknown> = { ...cmd.opts() };
      positionals.forEach((key, i) => {
        args[camelCase(key)] = values[i];
      });
      const code: unknown = await run({ args, given: (name) => cmd.getOptionValueSource(name) === 'cli' });
      if (typeof code === 'number') result.code = code;
    });
  }
  return cmd;
}
