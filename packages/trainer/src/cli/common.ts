/** Helpers shared by the model subcommands of cllama-train. */
import { Option } from 'commander';
import { BACKEND_CHOICES } from '../backend.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function backendOption(): Option {
  return new Option('--backend <name>', 'tfjs backend: auto = tfjs-node-gpu, else tfjs-node, else wasm; native = onnxruntime-node GEMMs, no wasm heap limit (docs/trainer.md)').choices([...BACKEND_CHOICES]).default('auto');
}

export function parsePositiveInt(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got '${value}'`);
    return n;
  };
}

export function parseNumber(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} must be a number in [${min}, ${max}], got '${value}'`);
    return n;
  };
}
