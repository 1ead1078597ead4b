import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { describe, expect, it } from 'vitest';
import { collate } from '../src/collate.js';
import { buildPretrainBlocks } from '../src/pretrain.js';
import { ALPACA_PAD, DATA, LLAMA_BOS, loadSentencePiece, MERGED_MODEL, spTokenizer } from './helpers.js';

describe('buildPretrainBlocks', () => {
  it('gives [BOS]+ids per line, concatenated, full blocks only', async () => {
    const sp = await loadSentencePiece();
    const tok = await spTokenizer();
    const lines = ['白日依山尽，黄河入海流。', 'The primary use of LLaMA is research on large language models.', '', '欲穷千里目，更上一层楼。\r\n'];
    const stream = lines.flatMap((l) => [LLAMA_BOS, ...sp.encodeIds(l.replace(/\r?\n$/, ''))]);
    for (const blockSize of [1, 7, 16, stream.length, stream.length + 1]) {
      const blocks: number[][] = [];
      for await (const b of buildPretrainBlocks(lines, tok, blockSize)) blocks.push(b);
      const n = Math.floor(stream.length / blockSize);
      expect(blocks.length).toBe(n);
      expect(blocks.flat()).toEqual(stream.slice(0, n * blockSize));
      expect(blocks.every((b) => b.length === blockSize)).toBe(true);
    }
    // No EOS anywhere; the empty line still contributes its BOS.
    expect(stream.filter((t) => t === LLAMA_BOS).length).toBe(4);
  });
  it('equals Python sentencepiece 0.1.97 blocks (committed fixture) on 1,000 lines', async () => {
    const ref = JSON.parse(readFileSync(path.join(DATA, 'sft_reference.json'), 'utf8')).pretrain as {
      blockSize: number;
      blocks: number;
      first: number[];
      last: number[];
      sha256: string;
    };
    const zh = JSON.parse(readFileSync(path.join(DATA, 'alpaca_zh_demo.json'), 'utf8')) as { output: string }[];
    const tok = await loadTokenizer(MERGED_MODEL);
    const blocks: number[][] = [];
    for await (const b of buildPretrainBlocks(
      zh.map((r) => r.output.replace(/\n/g, ' ')),
      tok,
      ref.blockSize,
    ))
      blocks.push(b);
    expect(blocks.length).toBe(ref.blocks);
    expect(blocks[0]).toEqual(ref.first);
    expect(blocks.at(-1)).toEqual(ref.last);
    expect(createHash('sha256').update(JSON.stringify(blocks)).digest('hex')).toBe(ref.sha256);
  });

  it('rejects a bad block size', async () => {
    const tok = await spTokenizer();
    await expect(buildPretrainBlocks(['a'], tok, 0).next()).rejects.toThrow(/blockSize/);
  });
});

describe('collate', () => {
  it('pads ids with the pad id, labels with -100, mask = ids != pad', () => {
    const b = collate(
      [{ inputIds: [1, 5, 6], labels: [-100, 5, 6] }, { inputIds: [1, 7, 8, 9, 2], labels: [-100, -100, 8, 9, 2] }, { inputIds: [1, 4] }],
      ALPACA_PAD,
    );
    expect(b.batch).toBe(3);
    expect(b.seqLen).toBe(5);
    expect(Array.from(b.inputIds)).toEqual([1, 5, 6, ALPACA_PAD, ALPACA_PAD, 1, 7, 8, 9, 2, 1, 4, ALPACA_PAD, ALPACA_PAD, ALPACA_PAD]);
    expect(Array.from(b.labels)).toEqual([-100, 5, 6, -100, -100, -100, -100, 8, 9, 2, 1, 4, -100, -100, -100]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    expect(collate([{ inputIds: [3, 4, 5] }], 0, { padToMultipleOf: 4 }).seqLen).toBe(4);
    expect(() => collate([], 0)).toThrow(/empty/);
    expect(() => collate([{ inputIds: [1, 2], labels: [1] }], 0)).toThrow(/labels/);
  });
});
