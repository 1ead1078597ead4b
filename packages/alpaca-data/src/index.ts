/** @cllama/alpaca-data — Alpaca-format instruction data and pre-training data: readers, converters, mixer, tokenization, caching. */
export const PACKAGE_NAME = '@cllama/alpaca-data';

export { AlpacaDataError, InputFormatError, RecordError, TokenizedDatasetError, UsageError } from './errors.js';
export type { EncodingTokenizer } from './tokenizer.js';
export {
  REFERENCE_TEMPLATE,
  STANFORD_ALPACA_TEMPLATE,
  TEMPLATES,
  formatPrompt,
  resolveTemplate,
  type PromptTemplate,
} from './template.js';
export {
  DEFAULT_MAX_SEQ_LENGTH,
  IGNORE_INDEX,
  buildSftExample,
  type AlpacaRecord,
  type SftExample,
  type SftOptions,
} from './sft.js';
export { buildPretrainBlocks } from './pretrain.js';
export { collate, type Batch, type CollateInput } from './collate.js';
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
export {
  readByteLines,
  readJsonArray,
  readJsonLines,
  readJsonRecords,
  readTextLines,
  sniffJsonKind,
  type JsonFileKind,
  type RawItem,
} from './readers.js';
export { checkAlpacaRecord, checkedRecords, readAlpacaRecords, type Located, type ReadOptions } from './records.js';
export {
  CONVERTERS,
  TRANSLATION_INSTRUCTIONS,
  convertAlpaca,
  convertCrawler,
  convertIdentity,
  convertPclue,
  convertTranslation,
  makeConverter,
  type ConvertOptions,
  type ConvertResult,
  type ConvertedRecord,
  type ConverterName,
  type TranslationDirection,
} from './converters.js';
export { convertFile, type ConvertFileOptions, type ConvertSummary } from './convert-file.js';
export { REFUSAL_PHRASES, cleaningReason, exactKey, hasBrokenEncoding, nearKey, type CleanOptions, type DropReason } from './clean.js';
export {
  DROP_REASONS,
  HISTOGRAM_EDGES,
  formatMixReport,
  mixSources,
  parseSourceSpec,
  recordLength,
  type MixOptions,
  type MixReport,
  type MixSource,
  type SourceStats,
} from './mixer.js';
export { tokenizeFiles, type TokenizeFilesOptions, type TokenizeSummary } from './tokenize-files.js';
export {
  alpacaFileStats,
  dumpJsonLine,
  dumpText,
  tokenizedStats,
  type AlpacaFileStats,
  type DatasetStats,
  type DecodingTokenizer,
} from './inspect.js';
