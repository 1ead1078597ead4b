/**
 * The facts of tfjs-node / tfjs-node-gpu (`tensorflow`: libtensorflow, its own thread pool or CUDA) —
 * see ../facts.ts. Plain tfjs behaviour: nothing differs from GENERIC_FACTS but its name.
 */
import { GENERIC_FACTS, type BackendFacts } from '../facts.js';

export const TENSORFLOW_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'tensorflow',
  threads: { dataParallel: false, why: 'the tensorflow backend already uses every core' },
};
