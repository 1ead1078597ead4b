/**
 * SentencePiece's normalizer (`normalizer.cc`), exact: the precompiled character map (longest
 * prefix rule wins), user-defined symbols copied untouched, `remove_extra_whitespaces` (drop
 * leading, trailing and repeated spaces), `escape_whitespaces` (space → U+2581 "▁") and
 * `add_dummy_prefix` (a "▁" in front, or behind with `treat_whitespace_as_suffix`).
 *
 * The C++ code works on UTF-8 bytes; so does the general path here. Models whose normalizer is the
 * identity and keeps extra whitespace (LLaMA's) take a string fast path with the same result.
 */
import { PrecompiledCharsMap } from './charsmap.js';
import type { EncoderModelProto } from './model.js';
import { PrefixMatcher } from './prefix-matcher.js';

const SPACE = 0x20;
/** U+2581 LOWER ONE EIGHTH BLOCK in UTF-8. */
const WS0 = 0xe2;
const WS1 = 0x96;
const WS2 = 0x81;

export const SPACE_SYMBOL = '\u2581';

/** Length of the UTF-8 sequence that starts with `lead` (SentencePiece's `OneCharLen`). */
export function oneCharLen(lead: number): number {
  // "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[lead >> 4]
  const hi = lead >> 4;
  return hi < 12 ? 1 : hi < 14 ? 2 : hi === 14 ? 3 : 4;
}

const utf8Decoder = new TextDecoder('utf-8');

/** ES2024 String methods (Node 20 has them; the project's lib setting is ES2023). */
interface WellFormedString {
  toWellFormed(): string;
}

export class Normalizer {
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
  readonly escapeWhitespaces: boolean;
  readonly treatWhitespaceAsSuffix: boolean;
  private readonly charsMap: PrecompiledCharsMap | undefined;
  private readonly matcher: PrefixMatcher;
  /** Identity rules and whitespace kept as is: a plain string transform suffices. */
  readonly isIdentity: boolean;
  private out = new Uint8Array(1024);
  private readonly valueOut = new Int32Array(1);

  constructor(proto: EncoderModelProto, matcher: PrefixMatcher) {
    const spec = proto.normalizerSpec ?? {};
    this.addDummyPrefix = spec.addDummyPrefix ?? true;
    this.removeExtraWhitespaces = spec.removeExtraWhitespaces ?? true;
    this.escapeWhitespaces = spec.escapeWhitespaces ?? true;
    this.treatWhitespaceAsSuffix = proto.trainerSpec?.treatWhitespaceAsSuffix ?? false;
    const blob = spec.precompiledCharsmap;
    this.charsMap = blob && blob.length > 0 ? new PrecompiledCharsMap(blob) : undefined;
    this.matcher = matcher;
    this.isIdentity = this.charsMap === undefined && !this.removeExtraWhitespaces;
  }

  /** The normalized text as a string. */
  normalize(text: string): string {
    if (text.length === 0) return '';
    if (this.isIdentity) {
      // Lone surrogates become U+FFFD, as in the UTF-8 the C++ library receives.
      let body = (text as unknown as WellFormedString).toWellFormed();
      if (this.escapeWhitespaces) body = body.replaceAll(' ', SPACE_SYMBOL);
      if (!this.addDummyPrefix) return body;
      const ws = this.escapeWhitespaces ? SPACE_SYMBOL : ' ';
      return this.treatWhitespaceAsSuffix ? body + ws : ws + body;
    }
    const length = this.normalizeBytes(Buffer.from(text, 'utf8'));
    return utf8Decoder.decode(this.out.subarray(0, length));
  }

  /**
   * Normalize UTF-8 `input` (as `Normalizer::Normalize`); the result is the first `length` bytes
   * of `this.output`, valid until the next call.
   */
  normalizeBytes(input: Uint8Array): number {
    let pos = 0;
    const end = input.length;
    let n = 0;
    if (end === 0) return 0;
    const prefix = { start: 0, length: 0, consumed: 0, fromMap: false };
    // Ignore leading spaces (whatever normalizes to exactly " ").
    if (this.removeExtraWhitespaces) {
      while (pos < end) {
        this.normalizePrefix(input, pos, end, prefix);
        if (!this.isSingleSpace(input, prefix)) break;
        pos += prefix.consumed;
      }
    }
    if (pos >= end) return 0;
    this.ensure(n + 3);
    if (!this.treatWhitespaceAsSuffix && this.addDummyPrefix) n = this.addWhitespace(n);
    let isPrevSpace = this.removeExtraWhitespaces;
    while (pos < end) {
      this.normalizePrefix(input, pos, end, prefix);
      const src = prefix.fromMap ? this.charsMap!.normalized : input;
      let s = prefix.start;
      const e = prefix.start + prefix.length;
      if (isPrevSpace) while (s < e && src[s] === SPACE) s++;
      if (s < e) {
        this.ensure(n + (e - s) * 3);
        const out = this.out;
        for (let k = s; k < e; k++) {
          const b = src[k];
          if (this.escapeWhitespaces && b === SPACE) {
            out[n++] = WS0;
            out[n++] = WS1;
            out[n++] = WS2;
          } else {
            out[n++] = b;
          }
        }
        isPrevSpace = src[e - 1] === SPACE;
      }
      pos += prefix.consumed;
      if (!this.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (this.removeExtraWhitespaces) {
      const out = this.out;
      if (this.escapeWhitespaces) {
        while (n >= 3 && out[n - 3] === WS0 && out[n - 2] === WS1 && out[n - 1] === WS2) n -= 3;
      } else {
        while (n >= 1 && out[n - 1] === SPACE) n--;
      }
    }
    if (this.treatWhitespaceAsSuffix && this.addDummyPrefix) {
      this.ensure(n + 3);
      n = this.addWhitespace(n);
    }
    return n;
  }

  /** The buffer `normalizeBytes` wrote to. */
  get output(): Uint8Array {
    return this.out;
  }

  private addWhitespace(n: number): number {
    const out = this.out;
    if (this.escapeWhitespaces) {
      out[n++] = WS0;
      out[n++] = WS1;
      out[n++] = WS2;
    } else {
      out[n++] = SPACE;
    }
    return n;
  }

  private isSingleSpace(input: Uint8Array, p: { start: number; length: number; fromMap: boolean }): boolean {
    const src = p.fromMap ? this.charsMap!.normalized : input;
    return p.length === 1 && src[p.start] === SPACE;
  }

  /** `Normalizer::NormalizePrefix`: what the input at `pos` becomes and how many bytes it consumes. */
  private normalizePrefix(input: Uint8Array, pos: number, end: number, result: { start: number; length: number; consumed: number; fromMap: boolean }): void {
    if (!this.matcher.empty) {
      const m = this.matcher.matchBytes(input, pos, end);
      if (m > 0) {
        result.start = pos;
        result.length = m;
        result.consumed = m;
        result.fromMap = false;
        return;
      }
    }
    if (this.charsMap) {
      const longest = this.charsMap.longestMatch(input, pos, end, this.valueOut);
      if (longest > 0) {
        const offset = this.valueOut[0];
        result.start = offset;
        result.length = this.charsMap.replacementLength(offset);
        result.consumed = longest;
        result.fromMap = true;
        return;
      }
    }
    // Input from a JS string is valid UTF-8 (lone surrogates already became U+FFFD).
    const len = Math.min(oneCharLen(input[pos]), end - pos);
    result.start = pos;
    result.length = len;
    result.consumed = len;
    result.fromMap = false;
  }

  private ensure(size: number): void {
    if (size <= this.out.length) return;
    let capacity = this.out.length * 2;
    while (capacity < size) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.out);
    this.out = next;
  }
}
