// Types for the parts of sentencepiece-js (SentencePiece compiled to wasm; ships no types) the tests use.
declare module 'sentencepiece-js' {
  export class SentencePieceProcessor {
    load(path: string): Promise<void>;
    encodeIds(text: string): number[];
    encodePieces(text: string): string[];
    decodeIds(ids: number[]): string;
  }
  const _default: { SentencePieceProcessor: typeof SentencePieceProcessor };
  export default _default;
}
