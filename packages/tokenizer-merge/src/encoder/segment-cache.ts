/**
 * Memo of encoded BPE segments keyed by their symbol sequence, in typed arrays: no string keys to
 * allocate and hash per segment. Keys and values live in two int pools; when either pool or the
 * slot table fills up, everything is dropped and refilled (frequent segments come back at once).
 */
export class SegmentCache {
  private readonly slotCount: number;
  private readonly slotHash: Int32Array;
  /** Start of the key in keyPool, -1 for an empty slot. */
  private readonly slotKey: Int32Array;
  private readonly slotKeyLength: Int32Array;
  private readonly slotValue: Int32Array;
  private readonly slotValueLength: Int32Array;
  private readonly keyPool: Int32Array;
  readonly valuePool: Int32Array;
  private keyUsed = 0;
  private valueUsed = 0;
  private used = 0;

  constructor(slotBits = 17, poolSize = 1 << 20) {
    this.slotCount = 1 << slotBits;
    this.slotHash = new Int32Array(this.slotCount);
    this.slotKey = new Int32Array(this.slotCount).fill(-1);
    this.slotKeyLength = new Int32Array(this.slotCount);
    this.slotValue = new Int32Array(this.slotCount);
    this.slotValueLength = new Int32Array(this.slotCount);
    this.keyPool = new Int32Array(poolSize);
    this.valuePool = new Int32Array(poolSize);
  }

  static hash(syms: Int32Array, start: number, end: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = start; i < end; i++) h = Math.imul(h ^ syms[i], 0x01000193);
    return h ^ (h >>> 16);
  }

  /** Slot holding syms[start, end), or -1. */
  find(syms: Int32Array, start: number, end: number, hash: number): number {
    const mask = this.slotCount - 1;
    const len = end - start;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const key = this.slotKey[slot];
      if (key < 0) return -1;
      if (this.slotHash[slot] === hash && this.slotKeyLength[slot] === len) {
        let k = 0;
        while (k < len && this.keyPool[key + k] === syms[start + k]) k++;
        if (k === len) return slot;
      }
    }
  }

  valueStart(slot: number): number {
    return this.slotValue[slot];
  }

  valueLength(slot: number): number {
    return this.slotValueLength[slot];
  }

  insert(syms: Int32Array, start: number, end: number, hash: number, ids: readonly number[]): void {
    const len = end - start;
    if ((this.used + 1) * 2 > this.slotCount || this.keyUsed + len > this.keyPool.length || this.valueUsed + ids.length > this.valuePool.length) {
      this.clear();
      if (len > this.keyPool.length || ids.length > this.valuePool.length) return;
    }
    const mask = this.slotCount - 1;
    let slot = hash & mask;
    while (this.slotKey[slot] >= 0) slot = (slot + 1) & mask;
    this.slotHash[slot] = hash;
    this.slotKey[slot] = this.keyUsed;
    this.slotKeyLength[slot] = len;
    this.keyPool.set(syms.subarray(start, end), this.keyUsed);
    this.keyUsed += len;
    this.slotValue[slot] = this.valueUsed;
    this.slotValueLength[slot] = ids.length;
    for (let k = 0; k < ids.length; k++) this.valuePool[this.valueUsed + k] = ids[k];
    this.valueUsed += ids.length;
    this.used++;
  }

  clear(): void {
    this.slotKey.fill(-1);
    this.keyUsed = 0;
    this.valueUsed = 0;
    this.used = 0;
  }

  get size(): number {
    return this.used;
  }
}
