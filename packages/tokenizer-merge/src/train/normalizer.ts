/**
 * SentencePiece's normalizer (normalizer.cc) as spm_train runs it on training sentences:
 * longest-match rewriting with the precompiled character map, then whitespace handling
 * (drop leading/trailing/repeated spaces, add the dummy prefix, spaces → ▁).
 *
 * The character map is the Darts-clone double-array trie SentencePiece stores in
 * `normalizer_spec.precompiled_charsmap`: a little-endian uint32 trie size, the trie units, then the
 * NUL-terminated replacement strings the trie values point at. Working on that same blob (not on
 * String.prototype.normalize) keeps training and every SentencePiece encoder in exact agreement.
 */

const SPACE_SYMBOL = [0xe2, 0x96, 0x81]; // ▁ in UTF-8
const REPLACEMENT_CHAR = Uint8Array.of(0xef, 0xbf, 0xbd); // U+FFFD

export interface NormalizerOptions {
  /** precompiled_charsmap bytes; empty or undefined = identity. */
  charsmap?: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  treatWhitespaceAsSuffix: boolean;
}

export class Normalizer {
  private readonly trie: Uint32Array | undefined;
  private readonly strings: Uint8Array | undefined;
  private readonly replacementCache = new Map<number, Uint8Array>();
  private out = new Uint8Array(1 << 16);

  constructor(private readonly opts: NormalizerOptions) {
    const blob = opts.charsmap;
    if (blob && blob.length > 0) {
      if (blob.length < 4) throw new Error('precompiled_charsmap is truncated');
      const trieSize = blob[0]! | (blob[1]! << 8) | (blob[2]! << 16) | (blob[3]! << 24);
      if (trieSize < 0 || trieSize % 4 !== 0 || 4 + trieSize > blob.length) {
        throw new Error('precompiled_charsmap has an invalid trie size');
      }
      const copy = new Uint8Array(trieSize);
      copy.set(blob.subarray(4, 4 + trieSize));
      this.trie = new Uint32Array(copy.buffer, 0, trieSize / 4);
      this.strings = blob.subarray(4 + trieSize);
    }
  }

  /** Longest charsmap rule matching bytes[start..end): [consumed bytes, replacement] or undefined. */
  private longestRule(bytes: Uint8Array, start: number, end: number): [number, Uint8Array] | undefined {
    const trie = this.trie;
    if (!trie) return undefined;
    let nodePos = 0;
    let unit = trie[0]!;
    nodePos ^= (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let bestLen = 0;
    let bestValue = -1;
    for (let i = start; i < end; i++) {
      const c = bytes[i]!;
      nodePos ^= c;
      if (nodePos >= trie.length) break;
      unit = trie[nodePos]!;
      if ((unit & 0x800000ff) !== c) break;
      nodePos ^= (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
      if ((unit >>> 8) & 1) {
        bestLen = i - start + 1;
        bestValue = trie[nodePos]! & 0x7fffffff;
      }
    }
    if (bestLen === 0) return undefined;
    let repl = this.replacementCache.get(bestValue);
    if (!repl) {
      const strings = this.strings!;
      let e = bestValue;
      while (e < strings.length && strings[e] !== 0) e++;
      repl = strings.slice(bestValue, e);
      this.replacementCache.set(bestValue, repl);
    }
    return [bestLen, repl];
  }

  /** Normalizes the prefix of bytes[start..end): [consumed, output bytes (a view or a copy)]. */
  private normalizePrefix(bytes: Uint8Array, start: number, end: number): [number, Uint8Array] {
    const rule = this.longestRule(bytes, start, end);
    if (rule) return rule;
    const len = validUtf8Length(bytes, start, end);
    if (len === 0) return [1, REPLACEMENT_CHAR];
    return [len, bytes.subarray(start, start + len)];
  }

  private ensure(extra: number, len: number): void {
    if (len + extra <= this.out.length) return;
    const bigger = new Uint8Array(Math.max(this.out.length * 2, len + extra));
    bigger.set(this.out.subarray(0, len));
    this.out = bigger;
  }

  /** Normalizes one sentence given as UTF-8 bytes; returns the normalized text ('' if nothing is left). */
  normalizeBytes(bytes: Uint8Array, start = 0, end = bytes.length): string {
    const { addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces, treatWhitespaceAsSuffix } = this.opts;
    let pos = start;
    if (removeExtraWhitespaces) {
      while (pos < end) {
        const [n, sp] = this.normalizePrefix(bytes, pos, end);
        if (!(sp.length === 1 && sp[0] === 0x20)) break;
        pos += n;
      }
    }
    if (pos >= end) return '';
    let len = 0;
    const addWs = (): void => {
      this.ensure(3, len);
      if (escapeWhitespaces) {
        this.out[len++] = SPACE_SYMBOL[0]!;
        this.out[len++] = SPACE_SYMBOL[1]!;
        this.out[len++] = SPACE_SYMBOL[2]!;
      } else {
        this.out[len++] = 0x20;
      }
    };
    if (!treatWhitespaceAsSuffix && addDummyPrefix) addWs();
    let isPrevSpace = removeExtraWhitespaces;
    while (pos < end) {
      const [n, sp] = this.normalizePrefix(bytes, pos, end);
      let s = 0;
      while (isPrevSpace && s < sp.length && sp[s] === 0x20) s++;
      if (s < sp.length) {
        this.ensure((sp.length - s) * 3, len);
        const out = this.out;
        for (let k = s; k < sp.length; k++) {
          const b = sp[k]!;
          if (escapeWhitespaces && b === 0x20) {
            out[len++] = SPACE_SYMBOL[0]!;
            out[len++] = SPACE_SYMBOL[1]!;
            out[len++] = SPACE_SYMBOL[2]!;
          } else {
            out[len++] = b;
          }
        }
        isPrevSpace = sp[sp.length - 1] === 0x20;
      }
      pos += n;
      if (!removeExtraWhitespaces) isPrevSpace = false;
    }
    if (removeExtraWhitespaces) {
      const out = this.out;
      if (escapeWhitespaces) {
        while (len >= 3 && out[len - 3] === 0xe2 && out[len - 2] === 0x96 && out[len - 1] === 0x81) len -= 3;
      } else {
        while (len >= 1 && out[len - 1] === 0x20) len -= 1;
      }
    }
    if (treatWhitespaceAsSuffix && addDummyPrefix) addWs();
    return Buffer.from(this.out.buffer, this.out.byteOffset, len).toString('utf8');
  }

  normalize(text: string): string {
    const bytes = Buffer.from(text, 'utf8');
    return this.normalizeBytes(bytes, 0, bytes.length);
  }
}

/** Length of the valid UTF-8 character at bytes[i], or 0 if it is malformed. */
function validUtf8Length(bytes: Uint8Array, i: number, end: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number): boolean => i + k < end && (bytes[i + k]! & 0xc0) === 0x80;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = bytes[i + 1]!;
    if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b0 === 0xed && b1 >= 0xa0) return 0; // surrogate
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const b1 = bytes[i + 1]!;
    if (b0 === 0xf0 && b1 < 0x90) return 0;
    if (b0 === 0xf4 && b1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}
