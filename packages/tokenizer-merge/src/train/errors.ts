import { TokenizerMergeError } from '../proto.js';

/** Bad training input or options; the message says what is wrong and what to do. */
export class TrainError extends TokenizerMergeError {
  override name = 'TrainError';
}
