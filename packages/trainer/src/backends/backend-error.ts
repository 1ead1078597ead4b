/** A backend that cannot be used, or that reported a fault (a WebGPU device error): one line saying what to do. */
import { TrainerError } from '../errors.js';

export class BackendError extends TrainerError {
  override name = 'BackendError';
}
