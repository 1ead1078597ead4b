/**
 * @cllama/tokenizer-merge — SentencePiece vocabulary training, merging and Hugging Face tokenizer
 * export for LLaMA vocabulary expansion. This file is the public API (see README.md); everything else,
 * the CLI's command runners included, is internal.
 */
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
export type { ModelProto, NormalizerSpec, SelfTestData, SelfTestSample, SentencePiece, TrainerSpec } from './proto.js';
export { SentencePieceTokenizer, createSentencePieceTokenizer, loadTokenizer, readHfAddedTokens } from './tokenizer.js';
export type { AddedToken, Tokenizer, TokenizerOptions } from './tokenizer.js';
export { EncoderModelError, SentencePieceEncoder } from './encoder/index.js';
export type { EncoderModelProto } from './encoder/index.js';
export { MergeInputError, mergeVocab, mergeVocabWithStats } from './merge.js';
export type { MergeOptions, MergeStats } from './merge.js';
export { buildHfTokenizerFiles, buildTokenizerJson } from './hf-export.js';
export type { HfExportOptions, HfTokenizerFiles } from './hf-export.js';
export { measureAgreement, unreachablePieces } from './agreement.js';
export type { AgreementReport } from './agreement.js';
export { mergeTokenizers } from './merge-tokenizer.js';
export type { MergeTokenizerOptions, MergeTokenizerResult } from './merge-tokenizer.js';
export { compareModels } from './cli/compare.js';
export type { CompareReport, CompareRow } from './cli/compare.js';
export { inspectModel } from './cli/inspect.js';
export type { InspectReport } from './cli/inspect.js';
export { trainSentencePiece, writeTrainedModel } from './train/train.js';
export type { TrainProgress, TrainResult, TrainSentencePieceOptions, TrainStats } from './train/train.js';
export { TrainError } from './train/errors.js';
