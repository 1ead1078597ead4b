import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sentencepiece from 'sentencepiece-js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO_ROOT, 'test-fixtures');
export const MERGED_MODEL = path.join(FIXTURES, 'tokenizers/merged_reference.model');
export const DATA = path.join(FIXTURES, 'data');

/** LLaMA's trainer_spec ids (the merged model keeps LLaMA's): <unk>=0, <s>=1, </s>=2; Alpaca's [PAD] is appended at 49,953. */
export const LLAMA_BOS = 1;
export const LLAMA_EOS = 2;
export const ALPACA_PAD = 49953;

export interface SpProcessor {
  encodeIds(text: string): number[];
  encodePieces(text: string): string[];
}

/** Real SentencePiece (the C++ library compiled to wasm) on a .model file: the independent reference. */
export async function loadSentencePiece(modelPath = MERGED_MODEL): Promise<SpProcessor> {
  const p = new sentencepiece.SentencePieceProcessor();
  await p.load(modelPath);
  return p as SpProcessor;
}

/** A tokenizer with SentencePiece semantics over real sentencepiece, for tests of the formatting code. */
export async function spTokenizer(modelPath = MERGED_MODEL) {
  const sp = await loadSentencePiece(modelPath);
  return {
    bosId: LLAMA_BOS,
    eosId: LLAMA_EOS,
    padId: ALPACA_PAD,
    vocabSize: 49954,
    encode(text: string, opts: { addBos?: boolean; addEos?: boolean } = {}): number[] {
      const ids = sp.encodeIds(text);
      if (opts.addBos) ids.unshift(LLAMA_BOS);
      if (opts.addEos) ids.push(LLAMA_EOS);
      return ids;
    },
  };
}
