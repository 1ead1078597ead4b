/** @cllama/tokenizer-merge — SentencePiece vocabulary training, merging and Hugging Face tokenizer export for LLaMA vocabulary expansion. */
export const PACKAGE_NAME = '@cllama/tokenizer-merge';

export {
  ModelFormatError,
  ModelType,
  NORMALIZER_SPEC_DEFAULTS,
  PieceType,
  TRAINER_SPEC_DEFAULTS,
  TokenizerMergeError,
  createPiece,
  modelTypeName,
  parseModelProto,
  pieceTypeName,
  readModelProto,
  resolveModelPath,
  serializeModelProto,
  validateModelProto,
} from './proto.js';
export type {
  ModelProto,
  NormalizerSpec,
  SelfTestData,
  SelfTestSample,
  SentencePiece,
  TrainerSpec,
  Uint64,
} from './proto.js';
export { SENTENCEPIECE_MODEL_PROTO } from './proto-schema.js';
export {
  SentencePieceTokenizer,
  createSentencePieceTokenizer,
  loadTokenizer,
  readHfAddedTokens,
} from './tokenizer.js';
export type { AddedToken, Tokenizer, TokenizerOptions } from './tokenizer.js';
