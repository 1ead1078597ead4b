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
export { AtomicFileWriter, writeFileAtomic } from './atomic.js';
