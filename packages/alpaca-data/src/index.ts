/** @cllama/alpaca-data — Alpaca-format instruction data and pre-training data: readers, converters, mixer, tokenization, caching. */
export const PACKAGE_NAME = '@cllama/alpaca-data';
