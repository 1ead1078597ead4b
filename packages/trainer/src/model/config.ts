/** The LLaMA config type comes from @cllama/lora (it reads and writes config.json). */
export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: null | { type: 'linear'; factor: number };
  tieWordEmbeddings: boolean;
  vocabSize: number;
  maxPositionEmbeddings: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId?: number;
  raw: Record<string, unknown>;
}
