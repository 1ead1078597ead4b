/**
 * The facts record (facts.ts) of each backend the trainer knows, by tfjs backend name, and of the
 * active one. The active backend is the one backend selection (src/backend.ts initBackend) made
 * active — tfjs's own record of it, so a backend switched with tf.setBackend is followed too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CPU_FACTS } from './cpu/facts.js';
import { GENERIC_FACTS, type BackendFacts } from './facts.js';
import { NATIVE_FACTS } from './native/facts.js';
import { TENSORFLOW_FACTS } from './tensorflow/facts.js';
import { WASM_FACTS } from './wasm/facts.js';
import { WEBGPU_FACTS } from './webgpu/facts.js';

const FACTS: readonly BackendFacts[] = [TENSORFLOW_FACTS, WEBGPU_FACTS, NATIVE_FACTS, WASM_FACTS, CPU_FACTS];

/** The facts of the tfjs backend `name`; GENERIC_FACTS (under that name) for one without a record, or no name. */
export function factsOf(name: string | undefined): BackendFacts {
  const known = FACTS.find((f) => f.name === name);
  if (known) return known;
  if (name === undefined) return GENERIC_FACTS;
  return { ...GENERIC_FACTS, name, threads: { dataParallel: false, why: `the ${name} backend already uses every core` } };
}

/** The facts of the active tfjs backend. */
export function backendFacts(): BackendFacts {
  return factsOf(tf.getBackend());
}

/** The names of the backends `--threads` applies to (data parallel: the single-threaded ones). */
export function dataParallelBackends(): string[] {
  return FACTS.filter((f) => f.threads.dataParallel).map((f) => f.name);
}
