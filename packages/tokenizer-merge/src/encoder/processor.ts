/**
 * `SentencePieceEncoder`: SentencePiece's `SentencePieceProcessor` (normalize → segment → ids, and
 * ids → text) in TypeScript, for BPE and UNIGRAM models. Results are identical to the C++ library
 * (checked against sentencepiece-js and Python sentencepiece in the tests).
 */
import { BpeModel } from './bpe.js';
import { Emitter } from './emitter.js';
import {
  BYTE,
  CONTROL,
  DEFAULT_UNK_SURFACE,
  EncoderModelError,
  MODEL_BPE,
  MODEL_UNIGRAM,
  UNKNOWN,
  Vocabulary,
  pieceToByte,
  type EncoderModelProto,
} from './model.js';
import { Normalizer, SPACE_SYMBOL } from './normalizer.js';
import { PrefixMatcher } from './prefix-matcher.js';
import { UnigramModel } from './unigram.js';

export class SentencePieceEncoder {
  readonly vocab: Vocabulary;
  readonly normalizer: Normalizer;
  readonly modelType: 'bpe' | 'unigram';
  private readonly bpe: BpeModel | undefined;
  private readonly unigram: UnigramModel | undefined;
  private readonly emitter: Emitter;
  private readonly unkSurface: string;
  /** Decoding strips the dummy-prefix "▁" of the first piece. */
  private readonly stripLeadingSpace: boolean;
  private readonly removeExtraWhitespaces: boolean;

  constructor(proto: EncoderModelProto) {
    this.vocab = new Vocabulary(proto);
    const matcher = new PrefixMatcher(this.vocab.userDefined);
    this.normalizer = new Normalizer(proto, matcher);
    const modelType = proto.trainerSpec?.modelType ?? MODEL_UNIGRAM;
    if (modelType === MODEL_BPE) {
      this.modelType = 'bpe';
      this.bpe = new BpeModel(this.vocab, matcher);
    } else if (modelType === MODEL_UNIGRAM) {
      this.modelType = 'unigram';
      this.unigram = new UnigramModel(this.vocab);
    } else {
      throw new EncoderModelError(`model type ${modelType} (WORD or CHAR) is not supported by the TypeScript encoder; use a BPE or UNIGRAM model`);
    }
    this.emitter = new Emitter(this.vocab, proto.trainerSpec?.byteFallback ?? false);
    // Only a value present in the file counts: the schema's default (" \xE2\x81\x87 ") is not
    // decoded as UTF-8 by every protobuf reader.
    const spec = proto.trainerSpec;
    this.unkSurface = spec && Object.hasOwn(spec, 'unkSurface') && spec.unkSurface !== undefined ? spec.unkSurface : DEFAULT_UNK_SURFACE;
    this.stripLeadingSpace = this.normalizer.addDummyPrefix || this.normalizer.removeExtraWhitespaces;
    this.removeExtraWhitespaces = this.normalizer.removeExtraWhitespaces;
  }

  /** Drop memoized BPE segments (only benchmarks need this). */
  clearCache(): void {
    this.bpe?.clearCache();
  }

  get size(): number {
    return this.vocab.size;
  }

  /** Ids of `text`, as `SentencePieceProcessor::Encode` (no BOS/EOS). */
  encode(text: string): number[] {
    return this.run(text, false).ids;
  }

  private run(text: string, recordPieces: boolean): { ids: number[]; pieces: string[] } {
    const emitter = this.emitter;
    emitter.reset(recordPieces);
    if (text.length === 0) return { ids: [], pieces: [] };
    const normalizer = this.normalizer;
    if (this.bpe && normalizer.isIdentity && this.bpe.isSegmentable) {
      // LLaMA-style models: read the raw text directly (same symbols as the normalized string).
      const dummy = normalizer.addDummyPrefix;
      const suffix = normalizer.treatWhitespaceAsSuffix;
      this.bpe.encodeRaw(text, dummy && !suffix, dummy && suffix, normalizer.escapeWhitespaces, emitter);
    } else if (this.bpe) {
      this.bpe.encode(normalizer.normalize(text), emitter);
    } else {
      const n = this.normalizer.normalizeBytes(Buffer.from(text, 'utf8'));
      this.unigram!.encode(this.normalizer.output, n, emitter);
    }
    const result = { ids: emitter.ids, pieces: emitter.pieces ?? [] };
    emitter.reset();
    return result;
  }

  /** `encode` under the name `SentencePieceBackend` (./tokenizer.ts) uses. */
  encodeIds(text: string): number[] {
    return this.encode(text);
  }

  /** `decode` under the name `SentencePieceBackend` uses. */
  decodeIds(ids: number[]): string {
    return this.decode(ids);
  }

  /** Pieces of `text` as `EncodeAsPieces`: an unknown run is its (normalized) text, bytes `<0xNN>`. */
  encodePieces(text: string): string[] {
    return this.run(text, true).pieces;
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.vocab.pieceStrings[id];
  }

  /** The id of `piece`, or the unk id (SentencePiece's `PieceToId`). */
  pieceToId(piece: string): number {
    return this.vocab.pieceToId(piece);
  }

  /**
   * `SentencePieceProcessor::Decode`: control pieces vanish, unk becomes the unk surface (" ⁇ "),
   * runs of byte pieces become UTF-8 (each invalid byte U+FFFD), "▁" becomes a space, and the first
   * piece loses its leading "▁" (the dummy prefix).
   */
  decode(ids: readonly number[]): string {
    const { pieceStrings, types } = this.vocab;
    let text = '';
    let bytes: number[] = [];
    let isBosWs = true;
    let bosWsSeen = false;
    for (const id of ids) {
      this.checkId(id);
      const type = types[id];
      if (type === BYTE) {
        bytes.push(pieceToByte(pieceStrings[id]));
        continue;
      }
      if (bytes.length > 0) {
        text += decodeBytesLikeSentencePiece(bytes);
        bytes = [];
      }
      if (bosWsSeen || text.length > 0) isBosWs = false;
      let surface: string;
      bosWsSeen = false;
      if (type === CONTROL) {
        surface = '';
      } else if (type === UNKNOWN) {
        surface = this.unkSurface;
      } else {
        let piece = pieceStrings[id];
        if (isBosWs && this.stripLeadingSpace && piece.startsWith(SPACE_SYMBOL)) {
          piece = piece.slice(SPACE_SYMBOL.length);
          // With remove_extra_whitespaces every leading space goes, not only the first.
          bosWsSeen = !this.removeExtraWhitespaces;
        }
        surface = piece.replaceAll(SPACE_SYMBOL, ' ');
      }
      text += surface;
    }
    if (bytes.length > 0) text += decodeBytesLikeSentencePiece(bytes);
    return text;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size) {
      throw new EncoderModelError(`id ${id} is outside the vocabulary (0..${this.vocab.size - 1})`);
    }
  }
}

/** UTF-8 decoding as SentencePiece's `DecodeUTF8`: every byte of a malformed sequence → U+FFFD. */
export function decodeBytesLikeSentencePiece(bytes: readonly number[]): string {
  let out = '';
  const n = bytes.length;
  for (let i = 0; i < n; ) {
    const b0 = bytes[i];
    let cp = -1;
    let len = 1;
    const trail = (k: number) => i + k < n && (bytes[i + k] & 0xc0) === 0x80;
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xe0) === 0xc0 && trail(1)) {
      const c = ((b0 & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
      if (c >= 0x80) [cp, len] = [c, 2];
    } else if ((b0 & 0xf0) === 0xe0 && trail(1) && trail(2)) {
      const c = ((b0 & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      if (c >= 0x800 && (c < 0xd800 || c >= 0xe000)) [cp, len] = [c, 3];
    } else if ((b0 & 0xf8) === 0xf0 && trail(1) && trail(2) && trail(3)) {
      const c = ((b0 & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f);
      if (c >= 0x10000 && c <= 0x10ffff) [cp, len] = [c, 4];
    }
    out += cp < 0 ? '\ufffd' : String.fromCodePoint(cp);
    i += cp < 0 ? 1 : len;
  }
  return out;
}
