/**
 * `cllama-data tokenize`: Alpaca files → SFT examples, or text files → pre-training blocks, written
 * as a tokenized dataset (tokenized-dataset.ts).
 */
import * as path from 'node:path';
import { AlpacaDataError, RecordError, UsageError } from './errors.js';
import { buildPretrainBlocks } from './pretrain.js';
import { readJsonRecords, readTextLines, type ReaderOptions } from './readers.js';
import { readAlpacaRecords } from './records.js';
import { buildSftExample, DEFAULT_MAX_SEQ_LENGTH } from './sft.js';
import { resolveTemplate, type PromptTemplate } from './template.js';
import type { EncodingTokenizer } from './tokenizer.js';
import { writeTokenizedDataset, type TokenizedDatasetMeta } from './tokenized-dataset.js';

export interface TokenizeFilesOptions {
  kind: 'sft' | 'pt';
  inputs: string[];
  out: string;
  tokenizer: EncodingTokenizer;
  /** Recorded in meta.json. */
  tokenizerPath?: string;
  maxSeqLength?: number;
  blockSize?: number;
  template?: PromptTemplate | string;
  strict?: boolean;
  onError?: (e: RecordError) => void;
  /** A record (sft) or line (pt) longer than this many bytes is skipped unread (default 8 MiB). */
  maxRecordBytes?: number;
  /** Called now and then with the characters of text tokenized so far. */
  onProgress?: (chars: number, records: number) => void;
}

export interface TokenizeSummary {
  meta: TokenizedDatasetMeta;
  /** Input records (sft) or lines (pt) read. */
  read: number;
  skipped: number;
  /** Characters of text passed to the tokenizer. */
  chars: number;
  /** SFT records cut at maxSeqLength. */
  truncated: number;
}

export async function tokenizeFiles(opts: TokenizeFilesOptions): Promise<TokenizeSummary> {
  if (opts.inputs.length === 0) throw new UsageError('tokenize: give at least one --input file');
  const tok = opts.tokenizer;
  let read = 0;
  let skipped = 0;
  let chars = 0;
  let truncated = 0;
  const onError = (e: RecordError) => {
    if (opts.strict) throw e;
    skipped++;
    opts.onError?.(e);
  };
  const progress = () => {
    if (opts.onProgress && (read & 1023) === 0) opts.onProgress(chars, read);
  };
  const info = {
    kind: opts.kind,
    tokenizer: opts.tokenizerPath,
    vocabSize: tok.vocabSize,
    bosId: tok.bosId,
    eosId: tok.eosId,
    padId: tok.padId,
    inputs: opts.inputs.map((f) => path.basename(f)),
  };

  if (opts.kind === 'sft') {
    const maxSeqLength = opts.maxSeqLength ?? DEFAULT_MAX_SEQ_LENGTH;
    if (!Number.isInteger(maxSeqLength) || maxSeqLength < 1) throw new UsageError(`--max-seq-length must be a positive integer, got ${opts.maxSeqLength}`);
    const template = resolveTemplate(opts.template);
    async function* examples() {
      for (const file of opts.inputs) {
        for await (const { record } of readAlpacaRecords(file, { strict: opts.strict, onError, maxRecordBytes: opts.maxRecordBytes })) {
          read++;
          chars += record.instruction.length + (record.input?.length ?? 0) + record.output.length;
          const ex = buildSftExample(record, tok, { maxSeqLength, template });
          if (ex.inputIds.length === maxSeqLength) truncated++;
          progress();
          yield ex;
        }
      }
      if (read === 0) throw noRecords(opts, skipped);
    }
    const meta = await writeTokenizedDataset(opts.out, examples(), { ...info, maxSeqLength, template: template.name });
    return { meta, read, skipped: skipped, chars, truncated };
  }
  if (opts.kind === 'pt') {
    const blockSize = opts.blockSize ?? 512;
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new UsageError(`--block-size must be a positive integer, got ${opts.blockSize}`);
    async function* lines() {
      for (const file of opts.inputs) {
        const limits = { maxRecordBytes: opts.maxRecordBytes };
        const source = /\.jsonl?$/i.test(file) ? jsonTextField(file, onError, limits) : readTextLines(file, onError, limits);
        for await (const line of source) {
          read++;
          chars += line.length;
          progress();
          yield line;
        }
      }
    }
    const meta = await writeTokenizedDataset(
      opts.out,
      (async function* () {
        let blocks = 0;
        for await (const block of buildPretrainBlocks(lines(), tok, blockSize)) {
          blocks++;
          yield { inputIds: block };
        }
        if (blocks === 0) {
          if (read === 0) throw noRecords(opts, skipped);
          throw new AlpacaDataError(
            `tokenize: the ${read} lines of text make no full block of ${blockSize} tokens; give more text or a smaller --block-size; nothing was written`,
          );
        }
      })(),
      { ...info, blockSize },
    );
    return { meta, read, skipped, chars, truncated: 0 };
  }
  throw new UsageError(`--kind must be sft or pt, got '${opts.kind as string}'`);
}

function noRecords(opts: TokenizeFilesOptions, skipped: number): AlpacaDataError {
  return new AlpacaDataError(
    `tokenize: no usable ${opts.kind === 'sft' ? 'records' : 'lines'} in ${opts.inputs.join(', ')}${skipped ? ` (${skipped} skipped)` : ''}; nothing was written`,
  );
}

/** Pre-training text from JSON lines / arrays of {"text": …} (e.g. C4): each document is one sample. */
async function* jsonTextField(file: string, onError: (e: RecordError) => void, limits: ReaderOptions): AsyncGenerator<string> {
  for await (const it of readJsonRecords(file, limits)) {
    if (!it.ok) {
      onError(it.error);
      continue;
    }
    const v = it.value as { text?: unknown } | null;
    if (v === null || typeof v !== 'object' || typeof v.text !== 'string') {
      onError(new RecordError(file, it.where, 'expected an object with a string "text" field'));
      continue;
    }
    yield v.text;
  }
}
