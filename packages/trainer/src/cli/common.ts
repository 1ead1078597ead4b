/** Helpers shared by the model subcommands of cllama-train. */
import { Option } from 'commander';
import { parseFiniteNumber, parseWholeNumber, UsageError } from '@cllama/core';
import { BACKEND_CHOICES, describeBackend, type BackendInfo } from '../backend.js';

export { UsageError } from '@cllama/core';

export function backendOption(): Option {
  return new Option(
    '--backend <name>',
    'tfjs backend: auto = tfjs-node-gpu, else WebGPU on a real GPU, else tfjs-node, else wasm; native = onnxruntime-node GEMMs, no wasm heap limit (docs/trainer.md)',
  )
    .choices([...BACKEND_CHOICES])
    .default('auto');
}

/** The backend line every subcommand prints on stderr once its inputs are valid. */
export function reportBackend(info: BackendInfo | undefined): void {
  if (info) console.error(`cllama-train: ${describeBackend(info)}`);
}

export function parsePositiveInt(name: string): (value: string) => number {
  return (value: string) => {
    const n = parseWholeNumber(value);
    if (!(n > 0)) throw new UsageError(`${name} must be a positive integer, got '${value}'`);
    return n;
  };
}

export function parseNonNegativeInt(name: string): (value: string) => number {
  return (value: string) => {
    const n = parseWholeNumber(value);
    if (!(n >= 0)) throw new UsageError(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}

export function parseNumber(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = parseFiniteNumber(value);
    if (Number.isNaN(n) || n < min || n > max) throw new UsageError(`${name} must be a number in [${min}, ${max}], got '${value}'`);
    return n;
  };
}
