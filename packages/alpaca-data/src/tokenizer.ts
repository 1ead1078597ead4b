/**
 * The part of @cllama/tokenizer-merge's `Tokenizer` this package needs. Declared structurally so that
 * the formatting code works with any encoder that has SentencePiece semantics (the merged LLaMA
 * tokenizer from `loadTokenizer`, or a test double built on real sentencepiece).
 */
export interface EncodingTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId?: number | undefined;
  readonly vocabSize?: number;
  /** SentencePiece encode of plain text: no special-token parsing inside the text. */
  encode(text: string, opts?: { addBos?: boolean; addEos?: boolean }): number[];
}
