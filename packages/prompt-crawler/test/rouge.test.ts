import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@cllama/core';
import { lcsLengthDP, rougeLF, rougeTokens, RougeLIndex } from '../src/rouge.js';

function randomText(rng: () => number, alphabet: string[], minLen: number, maxLen: number): string {
  const n = minLen + Math.floor(rng() * (maxLen - minLen + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
  return s;
}

describe('ROUGE-L', () => {
  it('tokenizes CJK per character and other scripts per word', () => {
    expect(rougeTokens('请把 Hello, World! 翻译成中文2次')).toEqual(['请', '把', 'hello', 'world', '翻', '译', '成', '中', '文', '2', '次']);
  });

  it('bit-parallel LCS equals the DP LCS, across word boundaries (lengths 1..100)', () => {
    const rng = mulberry32(7);
    const alphabet = '的一是不了人我在有他这中大来上国'.split('');
    const index = new RougeLIndex(0.7);
    const texts: string[] = [];
    for (let i = 0; i < 300; i++) {
      const t = randomText(rng, alphabet, 1, 100);
      texts.push(t);
      index.add(index.tokenIds(t));
    }
    for (let q = 0; q < 200; q++) {
      const query = index.tokenIds(randomText(rng, alphabet, 1, 100));
      const i = Math.floor(rng() * texts.length);
      expect(index.lcsWith(query, i)).toBe(lcsLengthDP(query, index.itemTokens(i)));
    }
  });

  it('findSimilar makes the same decision as a brute-force scan, across index rebuilds', () => {
    const rng = mulberry32(11);
    const alphabet = '天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳'.split('');
    // re-rank at 16, 32, 64, 128, 256 items, then frozen: queries run under several orders
    const index = new RougeLIndex(0.7, { firstRebuildAt: 16, freezeAt: 256 });
    let agreed = 0;
    let similarFound = 0;
    for (let i = 0; i < 800; i++) {
      // half the queries are mutations of a kept one, so both outcomes occur often
      let text: string;
      if (index.size > 0 && rng() < 0.5) {
        const src = index.itemTokens(Math.floor(rng() * index.size));
        const chars = Array.from(src, (id) => id);
        const mutated = chars.filter(() => rng() > 0.2);
        text = mutated.map((id) => alphabet[id % alphabet.length]).join('') + randomText(rng, alphabet, 0, 3);
      } else {
        text = randomText(rng, rng() < 0.5 ? alphabet : alphabet.slice(0, 8), 3, 40) + (rng() < 0.3 ? `x${i}` : '');
      }
      const ids = index.tokenIds(text);
      let brute = false;
      for (let j = 0; j < index.size; j++) {
        const other = index.itemTokens(j);
        if (rougeLF(lcsLengthDP(ids, other), ids.length, other.length) > 0.7) {
          brute = true;
          break;
        }
      }
      const fast = index.findSimilar(ids);
      expect(fast !== undefined).toBe(brute);
      if (fast) {
        const other = index.itemTokens(fast.index);
        expect(fast.score).toBeCloseTo(rougeLF(lcsLengthDP(ids, other), ids.length, other.length), 12);
        similarFound++;
      } else index.add(ids);
      agreed++;
    }
    expect(agreed).toBe(800);
    expect(similarFound).toBeGreaterThan(50);
    expect(index.size).toBeGreaterThan(50);
  });

  it('finds borderline matches whose shared tokens are the most common ones (prefix edge cases)', () => {
    const rng = mulberry32(5);
    const index = new RougeLIndex(0.7, { firstRebuildAt: 32, freezeAt: 128 });
    let fresh = 0;
    const word = () => `w${Math.floor(rng() * 400)}`; // shared vocabulary: frequent tokens
    // rare tokens: each in exactly one filler item, so re-ranking puts them first in every order
    const unique = () => `u${fresh++ % 2000}`;
    const items: string[][] = [];
    for (let f = 0; f < 100; f++) index.add(index.tokenIds(Array.from({ length: 20 }, (_, k) => `u${f * 20 + k}`).join(' ')));
    for (let i = 0; i < 300; i++) {
      const len = 4 + Math.floor(rng() * 30);
      const toks = Array.from({ length: len }, word);
      items.push(toks);
      index.add(index.tokenIds(toks.join(' ')));
    }
    let above = 0;
    let below = 0;
    for (let q = 0; q < 600; q++) {
      const base = items[Math.floor(rng() * items.length)];
      const m = base.length;
      // keep L tokens of base in order and add fresh tokens so that F sits just above or below 0.7
      const n = Math.max(2, rng() < 0.5 ? m + Math.floor(rng() * 5) - 2 : m + Math.floor(rng() * 0.9 * m));
      let L = Math.min(m, n, Math.floor((0.7 * (m + n)) / 2) + 1);
      if (rng() < 0.5) L = Math.max(1, L - 1);
      const keep = new Set<number>();
      while (keep.size < L) keep.add(Math.floor(rng() * m));
      const kept = base.filter((_, i) => keep.has(i));
      const query = [...kept];
      while (query.length < n) query.splice(Math.floor(rng() * (query.length + 1)), 0, unique());
      const ids = index.tokenIds(query.join(' '));
      let brute = false;
      for (let j = 0; j < index.size && !brute; j++) {
        const other = index.itemTokens(j);
        brute = rougeLF(lcsLengthDP(ids, other), ids.length, other.length) > 0.7;
      }
      expect(index.findSimilar(ids) !== undefined).toBe(brute);
      if (brute) above++;
      else below++;
    }
    expect(above).toBeGreaterThan(100);
    expect(below).toBeGreaterThan(100);
  });

  it('uses rouge_score F semantics: 0.7 is not above 0.7', () => {
    const index = new RougeLIndex(0.7);
    // a: 10 tokens, b: 10 tokens, LCS 7 → F = 0.7 exactly → kept
    index.add(index.tokenIds('a b c d e f g h i j'));
    expect(index.findSimilar(index.tokenIds('a b c d e f g x y z'))).toBeUndefined();
    const hit = index.findSimilar(index.tokenIds('a b c d e f g h y z'));
    expect(hit?.score).toBeCloseTo(0.8, 12);
  });
});
