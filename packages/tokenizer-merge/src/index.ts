/** @cllama/tokenizer-merge — SentencePiece vocabulary training, merging and Hugging Face tokenizer export for LLaMA vocabulary expansion. */
export const PACKAGE_NAME = '@cllama/tokenizer-merge';
