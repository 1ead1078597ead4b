// Types for the parts of sentencepiece-js (SentencePiece compiled to wasm; ships no types) we use.
declare module 'sentencepiece-js' {
  export class SentencePieceProcessor {
    /** Reads the model file at `path` and loads it into a fresh wasm instance. */
    load(path: string): Promise<void>;
    encodeIds(text: string): number[];
    encodePieces(text: string): string[];
    decodeIds(ids: number[]): string;
  }
}
