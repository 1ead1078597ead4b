/**
 * Vocabulary merge, as Chinese-LLaMA-Alpaca's merge_tokenizers.py does it: every piece of each
 * added model, in order, that is not yet in the merged vocabulary is appended with score 0
 * (type left unset, i.e. NORMAL); everything else of the base model (trainer spec, normalizer, model
 * type BPE, byte pieces) is kept as it was. The appended pieces are written exactly as the Python
 * script writes them — `piece` and `score` present, no `type` — so the serialized model is
 * byte-identical to the reference.
 */
import { TokenizerMergeError, createPiece, parseModelProto, serializeModelProto, type ModelProto } from './proto.js';

export interface MergeOptions {
  /**
   * Give the appended pieces distinct scores in (−1, 0), decreasing in the order they are added,
   * instead of the reference's score 0 for all. SentencePiece breaks score ties by position while
   * HF's BPE breaks them by merge rank, so with ties a converted tokenizer.json disagrees with
   * SentencePiece; distinct scores make both agree.
   */
  distinctScores?: boolean;
}

/** What a merge did, for the CLI and for reports. */
export interface MergeStats {
  basePieces: number;
  /** Pieces per added model, and how many of them were new. */
  added: Array<{ pieces: number; appended: number }>;
  mergedPieces: number;
}

/** The input models of a merge are unusable (empty added model, non-BPE base, …). */
export class MergeInputError extends TokenizerMergeError {
  override name = 'MergeInputError';
}

/**
 * Merge `added` models into a copy of `base` (base is not modified). An options object may be
 * passed as the last argument.
 */
export function mergeVocab(base: ModelProto, ...rest: Array<ModelProto | MergeOptions>): ModelProto {
  return mergeVocabWithStats(base, ...rest).model;
}

/** mergeVocab, also returning the piece counts before and after. */
export function mergeVocabWithStats(base: ModelProto, ...rest: Array<ModelProto | MergeOptions>): { model: ModelProto; stats: MergeStats } {
  const last = rest[rest.length - 1];
  const options: MergeOptions = last !== undefined && !isModelProto(last) ? (rest.pop() as MergeOptions) : {};
  const added = rest as ModelProto[];
  if (added.length === 0) throw new MergeInputError('nothing to merge: pass at least one model to add');
  added.forEach((m, i) => {
    if (!isModelProto(m) || m.pieces.length === 0) {
      throw new MergeInputError(`added model ${i + 1} has no pieces; pass a trained SentencePiece model`);
    }
  });

  // A deep copy that keeps presence and unknown fields exactly: re-parse the serialized base.
  const merged = parseModelProto(serializeModelProto(base), 'base model');
  const known = new Set(merged.pieces.map((p) => p.piece as string));
  const stats: MergeStats = { basePieces: merged.pieces.length, added: [], mergedPieces: 0 };
  const appended: string[] = [];
  for (const model of added) {
    let count = 0;
    for (const p of model.pieces) {
      const piece = p.piece as string;
      if (known.has(piece)) continue;
      known.add(piece);
      appended.push(piece);
      count++;
    }
    stats.added.push({ pieces: model.pieces.length, appended: count });
  }
  appended.forEach((piece, i) => {
    const score = options.distinctScores ? -(i + 1) / (appended.length + 1) : 0;
    merged.pieces.push(createPiece({ piece, score }));
  });
  stats.mergedPieces = merged.pieces.length;
  return { model: merged, stats };
}

function isModelProto(value: unknown): value is ModelProto {
  return typeof value === 'object' && value !== null && Array.isArray((value as ModelProto).pieces);
}
