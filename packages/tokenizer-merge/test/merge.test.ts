import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MergeInputError, mergeVocab, mergeVocabWithStats } from '../src/merge.js';
import { parseModelProto, serializeModelProto } from '../src/proto.js';
import { createSentencePieceTokenizer } from '../src/tokenizer.js';

const FIXTURES = path.resolve(__dirname, '../../../test-fixtures/tokenizers');
const read = (name: string) => parseModelProto(new Uint8Array(readFileSync(path.join(FIXTURES, name))), name);
const SEED_TEXT = '白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\nThe primary use of LLaMA is research on large language models, including';

describe('mergeVocab', () => {
  it('reproduces the reference merge byte for byte (49,953 pieces)', () => {
    const base = read('llama_tokenizer.model');
    const zh = read('chinese_sp.model');
    const { model, stats } = mergeVocabWithStats(base, zh);
    expect(stats).toEqual({ basePieces: 32000, added: [{ pieces: 20000, appended: 17953 }], mergedPieces: 49953 });
    const bytes = serializeModelProto(model);
    const reference = readFileSync(path.join(FIXTURES, 'merged_reference.model'));
    expect(bytes.length).toBe(reference.length);
    expect(Buffer.from(bytes).equals(reference)).toBe(true);
    // base untouched
    expect(base.pieces.length).toBe(32000);
  });

  it('encodes the seed text in 37 pieces instead of 53', async () => {
    const merged = mergeVocab(read('llama_tokenizer.model'), read('chinese_sp.model'));
    const tok = await createSentencePieceTokenizer(merged);
    expect(tok.encode(SEED_TEXT).length).toBe(37);
  });

  it('distinctScores gives appended pieces distinct decreasing scores in (-1, 0)', () => {
    const merged = mergeVocab(read('llama_tokenizer.model'), read('chinese_sp.model'), { distinctScores: true });
    const scores = merged.pieces.slice(32000).map((p) => p.score as number);
    expect(scores.length).toBe(17953);
    expect(Math.max(...scores)).toBeLessThan(0);
    expect(Math.min(...scores)).toBeGreaterThan(-1);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThan(scores[i - 1]);
    // survives float32 serialization
    const again = parseModelProto(serializeModelProto(merged));
    expect(new Set(again.pieces.slice(32000).map((p) => p.score)).size).toBe(17953);
  });

  it('merges several models, skipping pieces already added', () => {
    const zh = read('chinese_sp.model');
    const { stats } = mergeVocabWithStats(read('llama_tokenizer.model'), zh, zh);
    expect(stats.added).toEqual([
      { pieces: 20000, appended: 17953 },
      { pieces: 20000, appended: 0 },
    ]);
  });

  it('refuses to merge nothing or an empty model', () => {
    const base = read('llama_tokenizer.model');
    expect(() => mergeVocab(base)).toThrow(MergeInputError);
    expect(() => mergeVocab(base, { pieces: [] })).toThrow(/no pieces/);
  });
});
