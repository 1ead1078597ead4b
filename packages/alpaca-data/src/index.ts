/**
 * @cllama/alpaca-data — Alpaca-format instruction data and pre-training data: readers, converters,
 * mixer, tokenization, the tokenized dataset cache. This file is the public API (see README.md);
 * everything else is internal.
 */
export const PACKAGE_NAME = '@cllama/alpaca-data';

export { AlpacaDataError, InputFormatError, RecordError, TokenizedDatasetError, UsageError } from './errors.js';
export type { EncodingTokenizer } from './tokenizer.js';
// prompt templates and SFT / pre-training examples
export { REFERENCE_TEMPLATE, STANFORD_ALPACA_TEMPLATE, TEMPLATES, formatPrompt, resolveTemplate, type PromptTemplate } from './template.js';
export { DEFAULT_MAX_SEQ_LENGTH, IGNORE_INDEX, buildSftExample, type AlpacaRecord, type SftExample, type SftOptions } from './sft.js';
export { buildPretrainBlocks } from './pretrain.js';
export { collate, type Batch, type CollateInput } from './collate.js';
// the tokenized dataset cache shared with the trainer
export {
  TOKENIZED_FORMAT,
  TOKENIZED_VERSION,
  openTokenizedDataset,
  writeTokenizedDataset,
  type TokenizedDataset,
  type TokenizedDatasetInfo,
  type TokenizedDatasetMeta,
  type TokenizedRecord,
  type TokenizedRecordInput,
} from './tokenized-dataset.js';
// reading records
export { DEFAULT_MAX_RECORD_BYTES, readJsonRecords, readTextLines, type ReaderOptions } from './readers.js';
export { checkAlpacaRecord, readAlpacaRecords, type ReadOptions } from './records.js';
// converting, cleaning, mixing, tokenizing files (the cllama-data commands as functions)
export {
  CONVERTERS,
  makeConverter,
  type ConvertOptions,
  type ConvertResult,
  type ConvertedRecord,
  type ConverterName,
  type TranslationDirection,
} from './converters.js';
export { convertFile, type ConvertFileOptions, type ConvertSummary } from './convert-file.js';
export { REFUSAL_PHRASES, cleaningReason, type CleanOptions, type DropReason } from './clean.js';
export { DROP_REASONS, formatMixReport, mixSources, parseSourceSpec, type MixOptions, type MixReport, type MixSource, type SourceStats } from './mixer.js';
export { tokenizeFiles, type TokenizeFilesOptions, type TokenizeSummary } from './tokenize-files.js';
export { alpacaFileStats, tokenizedStats, type AlpacaFileStats, type DatasetStats, type DecodingTokenizer } from './inspect.js';
