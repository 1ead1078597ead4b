/**
 * @cllama/core — what every cllama package shares: seeded random numbers, atomic file and folder
 * writes, the error base class and exit codes, the command shape of every CLI and the runner that
 * prints one-line errors.
 */
export { hashString, mulberry32, Mulberry32, Xoshiro128 } from './random.js';
export type { RngState } from './random.js';
export {
  tempSibling,
  fsyncDir,
  writeFileAtomic,
  writeFileAtomicSync,
  copyFileAtomic,
  AtomicFileWriter,
  FolderExistsError,
  writeFolderAtomic,
  WriteError,
  fsErrorReason,
} from './atomic.js';
export type { FileContent } from './atomic.js';
export { CllamaError, UsageError, errorLine, EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED } from './errors.js';
export { runCli, runMain } from './cli.js';
export { defineCommand } from './command.js';
export type { ArgDef, ArgsDef, BooleanArg, CommandContext, CommandDef, CommandMeta, CommanderCommand, PositionalArg, StringArg } from './command.js';
export { integerFlag, numberFlag, parseFiniteNumber, parseWholeNumber } from './numbers.js';
export type { FlagRange } from './numbers.js';
export { realTarget, refuseSpecialFile } from './paths.js';
export type { CliProgram, RunCliOptions } from './cli.js';
