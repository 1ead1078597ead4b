/**
 * Turns a model's segmentation into ids the way `PopulateSentencePieceText` does: an unknown
 * piece becomes its UTF-8 bytes (`<0xNN>` pieces) when byte fallback is on; otherwise consecutive
 * unknown pieces collapse into one unk id. With `pieces` set it also records the piece strings
 * (`EncodeAsPieces`): an unknown piece is its text, not "<unk>".
 */
import type { Vocabulary } from './model.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Emitter {
  ids: number[] = [];
  /** Piece strings, when recording (`encodePieces`). */
  pieces: string[] | undefined;
  private prevUnknown = false;
  private readonly unkId: number;
  private readonly charIds = new Map<number, number>();

  constructor(
    private readonly vocab: Vocabulary,
    readonly byteFallback: boolean,
  ) {
    this.unkId = vocab.unkId;
  }

  reset(recordPieces = false): void {
    this.ids = [];
    this.pieces = recordPieces ? [] : undefined;
    this.prevUnknown = false;
  }

  get recording(): boolean {
    return this.pieces !== undefined;
  }

  /** Append a final id (bytes already expanded). */
  emit(id: number): void {
    if (id === this.unkId && !this.byteFallback) {
      if (this.prevUnknown) return;
      this.prevUnknown = true;
    } else {
      this.prevUnknown = false;
    }
    this.ids.push(id);
    this.pieces?.push(this.vocab.pieceStrings[id]);
  }

  /** emit() for pool[from, to): a plain copy when no unk can need merging and nothing is recorded. */
  emitRange(pool: Int32Array, from: number, to: number): void {
    if (this.byteFallback && this.pieces === undefined) {
      const ids = this.ids;
      for (let k = from; k < to; k++) ids.push(pool[k]);
      this.prevUnknown = false;
    } else {
      for (let k = from; k < to; k++) this.emit(pool[k]);
    }
  }

  /** An unknown piece (no byte fallback) with its text, merged into a preceding unknown piece. */
  private emitUnknownSurface(surface: string): void {
    if (this.prevUnknown) {
      if (this.pieces) this.pieces[this.pieces.length - 1] += surface;
      return;
    }
    this.prevUnknown = true;
    this.ids.push(this.unkId);
    this.pieces?.push(surface);
  }

  /** Id of a single character that is not a segmentation piece: a reserved piece, else unk. */
  private charId(cp: number): number {
    let id = this.charIds.get(cp);
    if (id === undefined) {
      id = this.vocab.pieceToId(String.fromCodePoint(cp));
      this.charIds.set(cp, id);
    }
    return id;
  }

  /** Push the final ids of the lone character `cp` (byte fallback applied) onto `out`. */
  unknownCharIds(cp: number, out: number[]): void {
    const id = this.charId(cp);
    if (id === this.unkId && this.byteFallback) {
      for (const b of encoder.encode(String.fromCodePoint(cp))) out.push(this.vocab.byteToId[b]);
    } else {
      out.push(id);
    }
  }

  emitUnknownChar(cp: number): void {
    const id = this.charId(cp);
    if (id !== this.unkId) this.emit(id);
    else if (this.byteFallback) for (const b of encoder.encode(String.fromCodePoint(cp))) this.emit(this.vocab.byteToId[b]);
    else this.emitUnknownSurface(String.fromCodePoint(cp));
  }

  /** An unknown piece given by its UTF-8 bytes. */
  emitUnknownBytes(bytes: Uint8Array, start: number, end: number): void {
    if (this.byteFallback) {
      for (let k = start; k < end; k++) this.emit(this.vocab.byteToId[bytes[k]]);
    } else {
      this.emitUnknownSurface(this.pieces ? decoder.decode(bytes.subarray(start, end)) : '');
    }
  }
}
