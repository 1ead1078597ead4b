/**
 * An open-addressing hash map from a pair of non-negative int32 keys to an int32 value, in typed
 * arrays. The encoder's hot loops look pairs up millions of times per second; a JS `Map` would need
 * a combined key (a heap number above 2^31) or a string, both much slower.
 */
export class IntPairMap {
  private keysA: Int32Array;
  private keysB: Int32Array;
  private values: Int32Array;
  private mask: number;
  private count = 0;

  constructor(expected = 1024) {
    let capacity = 1024;
    while (capacity < expected * 2) capacity *= 2;
    this.keysA = new Int32Array(capacity).fill(-1);
    this.keysB = new Int32Array(capacity);
    this.values = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  private static hash(a: number, b: number): number {
    // Multiplicative mixing of both halves; Math.imul keeps everything in int32.
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    return h ^ (h >>> 12);
  }

  /** The value stored for (a, b), or -1. Both keys must be >= 0. */
  get(a: number, b: number): number {
    const mask = this.mask;
    let slot = IntPairMap.hash(a, b) & mask;
    const keysA = this.keysA;
    for (;;) {
      const ka = keysA[slot];
      if (ka === -1) return -1;
      if (ka === a && this.keysB[slot] === b) return this.values[slot];
      slot = (slot + 1) & mask;
    }
  }

  has(a: number, b: number): boolean {
    return this.get(a, b) !== -1;
  }

  /** Store `value` (>= 0) for (a, b) unless (a, b) is already present; returns whether it stored. */
  setIfAbsent(a: number, b: number, value: number): boolean {
    if ((this.count + 1) * 2 > this.keysA.length) this.grow();
    const mask = this.mask;
    let slot = IntPairMap.hash(a, b) & mask;
    for (;;) {
      const ka = this.keysA[slot];
      if (ka === -1) {
        this.keysA[slot] = a;
        this.keysB[slot] = b;
        this.values[slot] = value;
        this.count++;
        return true;
      }
      if (ka === a && this.keysB[slot] === b) return false;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const { keysA, keysB, values } = this;
    const capacity = keysA.length * 2;
    this.keysA = new Int32Array(capacity).fill(-1);
    this.keysB = new Int32Array(capacity);
    this.values = new Int32Array(capacity);
    this.mask = capacity - 1;
    this.count = 0;
    for (let i = 0; i < keysA.length; i++) {
      if (keysA[i] !== -1) this.setIfAbsent(keysA[i], keysB[i], values[i]);
    }
  }
}
