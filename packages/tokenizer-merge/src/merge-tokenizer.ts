/**
 * The whole `merge` job without the file system: merge the vocabularies, build the HF files, and
 * measure how far tokenizer.json's BPE is from SentencePiece on a sample.
 */
import { measureAgreement, unreachablePieces, type AgreementReport } from './agreement.js';
import { buildHfTokenizerFiles, type HfTokenizerFiles } from './hf-export.js';
import { mergeVocabWithStats, type MergeStats } from './merge.js';
import { validateModelProto, type ModelProto } from './proto.js';
import { createSentencePieceTokenizer, readHfAddedTokensFromFiles } from './tokenizer.js';

export interface MergeTokenizerOptions {
  /** See MergeOptions.distinctScores. */
  distinctScores?: boolean;
  /** Pad token added after the vocabulary (default `[PAD]`), or null for none. */
  padToken?: string | null;
  /** Lines to compare SentencePiece and tokenizer.json on; no check when omitted or empty. */
  sampleLines?: readonly string[];
}

export interface MergeTokenizerResult {
  model: ModelProto;
  stats: MergeStats;
  /** SentencePiece pieces + pad token, if one was added. */
  vocabSize: number;
  files: HfTokenizerFiles;
  /** Appended pieces that tokenizer.json's BPE can never produce. */
  unreachable: string[];
  agreement?: AgreementReport;
}

export async function mergeTokenizers(base: ModelProto, added: ModelProto[], options: MergeTokenizerOptions = {}): Promise<MergeTokenizerResult> {
  validateModelProto(base, 'base model');
  const { model, stats } = mergeVocabWithStats(base, ...added, { distinctScores: options.distinctScores });
  validateModelProto(model, 'merged model');
  const padToken = options.padToken === undefined ? '[PAD]' : options.padToken;
  const files = buildHfTokenizerFiles(model, { padToken });
  const tokenizerConfig = JSON.parse(files['tokenizer_config.json']) as Record<string, unknown>;
  const tokenizerOptions = readHfAddedTokensFromFiles(tokenizerConfig, undefined, undefined, model.pieces.length);
  const result: MergeTokenizerResult = {
    model,
    stats,
    vocabSize: model.pieces.length + (tokenizerOptions.addedTokens?.length ?? 0),
    files,
    unreachable: unreachablePieces(model, stats.basePieces),
  };
  if (options.sampleLines && options.sampleLines.length > 0) {
    const sentencePiece = await createSentencePieceTokenizer(model, tokenizerOptions);
    result.agreement = measureAgreement(sentencePiece, JSON.parse(files['tokenizer.json']) as Record<string, unknown>, tokenizerConfig, options.sampleLines);
  }
  return result;
}
