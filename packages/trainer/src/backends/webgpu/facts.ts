/**
 * The facts of tfjs-backend-webgpu under Node (Dawn) — see ../facts.ts.
 *
 *   addNFanIn   AddN binds every input as a storage buffer, and a WebGPU device allows 8 per shader
 *               (16 on lavapipe, more on some GPUs): 7 inputs and the output
 *   syncReads   readSync reads back through OffscreenCanvas, which Node does not have
 *   threads     one process drives the device
 */
import { GENERIC_FACTS, type BackendFacts } from '../facts.js';

export const WEBGPU_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'webgpu',
  addNFanIn: 7,
  syncReads: false,
  threads: { dataParallel: false, why: 'on webgpu one process drives the device' },
};
