/**
 * SentencePiece's precompiled character map (`NormalizerSpec.precompiled_charsmap`): the blob
 * `<uint32 LE trie size><Darts-clone double array><normalized strings, each NUL-terminated>` that
 * `normalizer.cc` reads. The trie maps UTF-8 byte sequences to offsets into the string blob; the
 * normalizer replaces the longest matching prefix with the string at that offset.
 */
import { EncoderModelError } from './model.js';

export class PrecompiledCharsMap {
  /** Darts-clone double-array units. */
  private readonly units: Uint32Array;
  /** The NUL-separated replacement strings. */
  readonly normalized: Uint8Array;

  constructor(blob: Uint8Array) {
    if (blob.length <= 4) throw new EncoderModelError('precompiled_charsmap is broken (shorter than its header); re-export the model');
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize >= blob.length || trieSize % 4 !== 0) {
      throw new EncoderModelError(`precompiled_charsmap is broken (trie size ${trieSize} vs blob size ${blob.length}); re-export the model`);
    }
    // Copy so the units are 4-byte aligned whatever the blob's offset.
    const trieBytes = blob.slice(4, 4 + trieSize);
    this.units = new Uint32Array(trieBytes.buffer, 0, trieSize / 4);
    this.normalized = blob.slice(4 + trieSize);
  }

  /**
   * Darts `commonPrefixSearch` keeping the longest hit, as `Normalizer::NormalizePrefix` does:
   * returns the matched byte length (0 when no rule applies) and writes the replacement's offset
   * into the string blob to `out[0]`.
   */
  longestMatch(bytes: Uint8Array, pos: number, end: number, out: Int32Array): number {
    const units = this.units;
    let unit = units[0];
    let id = (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let longest = 0;
    let hits = 0;
    for (let i = pos; i < end; i++) {
      const c = bytes[i];
      id ^= c;
      if (id >= units.length) return longest;
      unit = units[id];
      // label(): the low byte plus the leaf flag (bit 31), which never equals a plain byte.
      if ((unit & 0x800000ff) >>> 0 !== c) return longest;
      id ^= (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
      if ((unit >>> 8) & 1) {
        // normalizer.cc keeps at most kMaxTrieResultsSize = 32 hits and takes the longest of them.
        if (++hits <= 32) {
          longest = i + 1 - pos;
          out[0] = units[id] & 0x7fffffff;
        }
      }
    }
    return longest;
  }

  /** Length of the NUL-terminated replacement at `offset`. */
  replacementLength(offset: number): number {
    let end = offset;
    const s = this.normalized;
    while (end < s.length && s[end] !== 0) end++;
    return end - offset;
  }
}
