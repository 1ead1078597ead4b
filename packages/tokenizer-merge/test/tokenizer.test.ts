import { mkdtempSync, copyFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSentencePieceTokenizer, loadTokenizer } from '../src/tokenizer.js';
import { readModelProto } from '../src/proto.js';

const FIXTURES = path.resolve(__dirname, '../../../test-fixtures/tokenizers');
// The seed's test text (SEED.md): Chinese poem line, newline, an English sentence.
const SEED_TEXT = '白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\nThe primary use of LLaMA is research on large language models, including';

describe('loadTokenizer (sentencepiece-js backend)', () => {
  it('encodes the seed text in 53 pieces with LLaMA and 37 with the reference merge', async () => {
    const llama = await loadTokenizer(path.join(FIXTURES, 'llama_tokenizer.model'));
    const merged = await loadTokenizer(path.join(FIXTURES, 'merged_reference.model'));
    expect(llama.encode(SEED_TEXT).length).toBe(53);
    expect(merged.encode(SEED_TEXT).length).toBe(37);
    expect(llama.vocabSize).toBe(32000);
    expect(merged.vocabSize).toBe(49953);
    expect([merged.unkId, merged.bosId, merged.eosId]).toEqual([0, 1, 2]);
    expect(merged.padId).toBeUndefined();
  });

  it('adds BOS/EOS on request and decodes back to the text', async () => {
    const tok = await loadTokenizer(path.join(FIXTURES, 'merged_reference.model'));
    const ids = tok.encode('黄河入海流', { addBos: true, addEos: true });
    expect(ids[0]).toBe(1);
    expect(ids[ids.length - 1]).toBe(2);
    expect(tok.decode(ids)).toBe('黄河入海流');
    const pieces = ids.slice(1, -1).map((id) => tok.idToPiece(id));
    expect(pieces.join('')).toBe('▁黄河入海流');
    expect(pieces.map((p) => tok.pieceToId(p))).toEqual(ids.slice(1, -1));
    expect(tok.encode('')).toEqual([]);
    expect(tok.pieceToId('no such piece')).toBeUndefined();
  });

  it('reads [PAD] from an HF folder (tokenizer_config.json added_tokens_decoder)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-hf-'));
    copyFileSync(path.join(FIXTURES, 'merged_reference.model'), path.join(dir, 'tokenizer.model'));
    const special = { content: '[PAD]', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ added_tokens_decoder: { '49953': special }, pad_token: '[PAD]' }));
    const tok = await loadTokenizer(dir);
    expect(tok.vocabSize).toBe(49954);
    expect(tok.padId).toBe(49953);
    expect(tok.idToPiece(49953)).toBe('[PAD]');
    expect(tok.pieceToId('[PAD]')).toBe(49953);
    // special tokens in text are not parsed (SentencePiece semantics)
    expect(tok.encode('[PAD]')).not.toContain(49953);
    expect(tok.decode([...tok.encode('你好'), 49953])).toBe('你好[PAD]');
    expect(() => tok.decode([49954])).toThrow(/outside the vocabulary/);
  });

  it('refuses a file that is not a model with a clear error', async () => {
    await expect(loadTokenizer(path.join(FIXTURES, '../README.md'))).rejects.toThrow(/not a SentencePiece model/);
    await expect(loadTokenizer(path.join(FIXTURES, 'missing.model'))).rejects.toThrow(/does not exist/);
  });
});

describe('loading many tokenizers', () => {
  it('leaves no process-wide handlers behind', async () => {
    const before = process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException');
    for (let i = 0; i < 3; i++) await loadTokenizer(path.join(FIXTURES, 'llama_tokenizer.model'));
    expect(process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException')).toBe(before);
  });
});

describe('pluggable backend', () => {
  it('uses the given backend instead of sentencepiece-js', async () => {
    const proto = await readModelProto(path.join(FIXTURES, 'llama_tokenizer.model'));
    const calls: string[] = [];
    const tok = await createSentencePieceTokenizer(proto, {
      backend: {
        encodeIds: (t) => {
          calls.push(t);
          return [5, 6];
        },
        encodePieces: () => ['a', 'b'],
        decodeIds: (ids) => ids.join(','),
      },
    });
    expect(tok.encode('x', { addBos: true })).toEqual([1, 5, 6]);
    expect(tok.decode([5, 6])).toBe('5,6');
    expect(calls).toEqual(['x']);
  });
});
