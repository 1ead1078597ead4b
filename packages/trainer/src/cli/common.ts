/** What the model subcommands of cllama-train share: the --backend flag, the backend line, the number-flag parsers. */
import { integerFlag, numberFlag, type StringArg } from '@cllama/core';
import { BACKEND_CHOICES, describeBackend, type BackendInfo } from '../backend.js';

export { UsageError } from '@cllama/core';

/** --backend, in every model subcommand's flag table. */
export const BACKEND_ARG: StringArg = {
  type: 'string',
  valueHint: 'name',
  description:
    'tfjs backend: auto = tfjs-node-gpu, else WebGPU on a real GPU, else tfjs-node, else wasm; native = onnxruntime-node GEMMs, no wasm heap limit (docs/trainer.md)',
  choices: BACKEND_CHOICES,
  default: 'auto',
};

/** The backend line every subcommand prints on stderr once its inputs are valid. */
export function reportBackend(info: BackendInfo | undefined): void {
  if (info) console.error(`cllama-train: ${describeBackend(info)}`);
}

/** Core's flag parsers under the names the trainer's tests use (one wording on every CLI). */
export const parsePositiveInt = (name: string) => integerFlag(name, { min: 1 });
export const parseNonNegativeInt = (name: string) => integerFlag(name, { min: 0 });
export const parseNumber = (name: string, min: number, max: number) => numberFlag(name, { min, max });
