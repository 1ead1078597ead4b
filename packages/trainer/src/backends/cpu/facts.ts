/**
 * The facts of tfjs's pure-JS `cpu` backend (one thread, tensors in JS arrays) — see ../facts.ts.
 *
 *   activationFactor   its tape keeps every intermediate in a JS array until V8 collects it (as native's, measured 5×)
 */
import { GENERIC_FACTS, type BackendFacts } from '../facts.js';

/** Activations as held by tfjs backends whose tensors are JS typed arrays (native, cpu); see src/memory.ts. */
export const JS_BACKEND_ACTIVATION_FACTOR = 5;

export const CPU_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'cpu',
  threads: { dataParallel: true },
  activationFactor: JS_BACKEND_ACTIVATION_FACTOR,
};
