/**
 * The parts of a SentencePiece `ModelProto` the encoder reads, and the vocabulary tables every
 * model type shares (SentencePiece's `ModelInterface::InitializePieces`).
 *
 * The interface is structural so that the `ModelProto` from `../proto.ts` (or any object of the
 * same shape) can be passed as is.
 */
import { TokenizerMergeError } from '../proto.js';

/** `ModelProto.SentencePiece.Type` values (absent = NORMAL). */
export const NORMAL = 1;
export const UNKNOWN = 2;
export const CONTROL = 3;
export const USER_DEFINED = 4;
export const UNUSED = 5;
export const BYTE = 6;

/** `TrainerSpec.ModelType` values (absent = UNIGRAM). */
export const MODEL_UNIGRAM = 1;
export const MODEL_BPE = 2;
export const MODEL_WORD = 3;
export const MODEL_CHAR = 4;

export interface EncoderModelProto {
  pieces: ReadonlyArray<{ piece?: string; score?: number; type?: number }>;
  trainerSpec?: {
    modelType?: number;
    byteFallback?: boolean;
    treatWhitespaceAsSuffix?: boolean;
    unkSurface?: string;
  };
  normalizerSpec?: {
    name?: string;
    precompiledCharsmap?: Uint8Array;
    addDummyPrefix?: boolean;
    removeExtraWhitespaces?: boolean;
    escapeWhitespaces?: boolean;
  };
}

/** The model cannot be used for encoding (bad or unsupported content). */
export class EncoderModelError extends TokenizerMergeError {
  override name = 'EncoderModelError';
}

/** Default of `TrainerSpec.unk_surface`: U+2047 between spaces. */
export const DEFAULT_UNK_SURFACE = ' \u2047 ';

/**
 * Piece tables as in `ModelInterface`: `pieces` holds NORMAL, USER_DEFINED and UNUSED pieces (the
 * ones a segmentation can produce), `reserved` holds CONTROL, UNKNOWN and BYTE pieces (reachable
 * only by id, or through byte fallback).
 */
export class Vocabulary {
  readonly size: number;
  readonly pieceStrings: string[];
  readonly scores: Float32Array;
  readonly types: Uint8Array;
  readonly pieces = new Map<string, number>();
  readonly reserved = new Map<string, number>();
  readonly userDefined: string[] = [];
  readonly unkId: number;
  /** Id of `<0xNN>` for every byte (all 256 exist when byte fallback is on). */
  readonly byteToId = new Int32Array(256);

  constructor(proto: EncoderModelProto) {
    const n = proto.pieces.length;
    const byteFallback = proto.trainerSpec?.byteFallback ?? false;
    if (n === 0) throw new EncoderModelError('the model has no pieces; load a complete SentencePiece .model file');
    this.size = n;
    this.pieceStrings = new Array<string>(n);
    this.scores = new Float32Array(n);
    this.types = new Uint8Array(n);
    let unkId = -1;
    let bytePieces = 0;
    const byteIds = new Int32Array(256).fill(-1);
    for (let i = 0; i < n; i++) {
      const p = proto.pieces[i];
      const piece = p.piece ?? '';
      const type = p.type ?? NORMAL;
      if (piece.length === 0) throw new EncoderModelError(`piece ${i} is empty; every SentencePiece piece must be non-empty`);
      this.pieceStrings[i] = piece;
      this.scores[i] = p.score ?? 0;
      this.types[i] = type;
      const isNormal = type === NORMAL || type === USER_DEFINED || type === UNUSED;
      const table = isNormal ? this.pieces : this.reserved;
      if (table.has(piece)) {
        throw new EncoderModelError(`piece ${JSON.stringify(piece)} (id ${i}) is already defined; pieces must be unique`);
      }
      table.set(piece, i);
      if (type === USER_DEFINED) this.userDefined.push(piece);
      if (type === UNKNOWN) {
        if (unkId >= 0) throw new EncoderModelError(`the model has two unknown pieces (ids ${unkId} and ${i}); keep one`);
        unkId = i;
      }
      if (type === BYTE) {
        if (!byteFallback) {
          throw new EncoderModelError(
            `byte piece ${JSON.stringify(piece)} (id ${i}) is found although trainer_spec.byte_fallback is false; set byte_fallback or remove the byte pieces`,
          );
        }
        const b = pieceToByte(piece);
        if (b < 0) throw new EncoderModelError(`byte piece ${JSON.stringify(piece)} (id ${i}) is not of the form <0xNN>`);
        byteIds[b] = i;
        bytePieces++;
      }
    }
    if (unkId < 0) throw new EncoderModelError('the model has no unknown (<unk>) piece; SentencePiece requires one');
    if (byteFallback && bytePieces !== 256) {
      throw new EncoderModelError(`trainer_spec.byte_fallback is true but the model has ${bytePieces} byte pieces, not 256 (<0x00>..<0xFF>)`);
    }
    this.unkId = unkId;
    for (let b = 0; b < 256; b++) this.byteToId[b] = byteIds[b] >= 0 ? byteIds[b] : unkId;
  }

  /** `ModelInterface::PieceToId`: reserved pieces first, then normal ones, else the unk id. */
  pieceToId(piece: string): number {
    const r = this.reserved.get(piece);
    if (r !== undefined) return r;
    const p = this.pieces.get(piece);
    return p !== undefined ? p : this.unkId;
  }
}

/** `<0xNN>` → NN, else -1. */
export function pieceToByte(piece: string): number {
  if (piece.length !== 6 || !piece.startsWith('<0x') || piece[5] !== '>') return -1;
  const hex = piece.slice(3, 5);
  if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return -1;
  return parseInt(hex, 16);
}
