/**
 * Turns a model's segmentation into ids the way `PopulateSentencePieceText` does: an unknown
 * piece becomes its UTF-8 bytes (`<0xNN>` pieces) when byte fallback is on; otherwise consecutive
 * unknown pieces collapse into one unk id.
 */
import type { Vocabulary } from './model.js';

const encoder = new TextEncoder();

export class Emitter {
  ids: number[] = [];
  private prevUnknown = false;
  private readonly unkId: number;
  private readonly charIds = new Map<number, number>();

  constructor(
    private readonly vocab: Vocabulary,
    readonly byteFallback: boolean,
  ) {
    this.unkId = vocab.unkId;
  }

  reset(): void {
    this.ids = [];
    this.prevUnknown = false;
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
    if (id === this.unkId && this.byteFallback) {
      for (const b of encoder.encode(String.fromCodePoint(cp))) this.ids.push(this.vocab.byteToId[b]);
    } else {
      this.emit(id);
    }
  }

  /** An unknown piece given by its UTF-8 bytes. */
  emitUnknownBytes(bytes: Uint8Array, start: number, end: number): void {
    if (this.byteFallback) {
      for (let k = start; k < end; k++) this.ids.push(this.vocab.byteToId[bytes[k]]);
    } else {
      this.emit(this.unkId);
    }
  }
}
