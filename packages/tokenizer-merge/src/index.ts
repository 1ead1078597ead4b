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
export type { AddedToken, SentencePieceBackend, Tokenizer, TokenizerOptions } from './tokenizer.js';
export { loadSentencePieceJsBackend } from './tokenizer.js';
export { EncoderModelError, SentencePieceEncoder, decodeBytesLikeSentencePiece } from './encoder/index.js';
export type { EncoderModelProto } from './encoder/index.js';
export { MergeInputError, mergeVocab, mergeVocabWithStats } from './merge.js';
export type { MergeOptions, MergeStats } from './merge.js';
export { buildHfTokenizerFiles, buildTokenizerJson, generateMerges, hfAddedTokens } from './hf-export.js';
export type { HfExportOptions, HfTokenizerFiles } from './hf-export.js';
export { builtinSamplePath, measureAgreement, readSampleLines, unreachablePieces } from './agreement.js';
export type { AgreementReport } from './agreement.js';
export { mergeTokenizers } from './merge-tokenizer.js';
export type { MergeTokenizerOptions, MergeTokenizerResult } from './merge-tokenizer.js';
export { readHfAddedTokensFromFiles } from './tokenizer.js';
export { runMerge } from './cli/merge.js';
export type { MergeCommandOptions } from './cli/merge.js';
export { runEncode } from './cli/encode.js';
export { compareModels, formatCompare } from './cli/compare.js';
export type { CompareReport, CompareRow } from './cli/compare.js';
export { inspectModel, formatInspect } from './cli/inspect.js';
export type { InspectReport } from './cli/inspect.js';
export { trainSentencePiece, writeTrainedModel } from './train/train.js';
export type { TrainProgress, TrainResult, TrainSentencePieceOptions, TrainStats } from './train/train.js';
export { TrainError } from './train/errors.js';
export { runTrain } from './cli/train.js';
export type { TrainCommandOptions } from './cli/train.js';
