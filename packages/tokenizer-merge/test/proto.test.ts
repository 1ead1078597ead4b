import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { ModelFormatError, PieceType, parseModelProto, readModelProto, serializeModelProto, validateModelProto } from '../src/proto.js';

const FIXTURES = path.resolve(__dirname, '../../../test-fixtures/tokenizers');
const fixture = (name: string) => new Uint8Array(readFileSync(path.join(FIXTURES, name)));

describe('ModelProto round trip', () => {
  for (const name of ['llama_tokenizer.model', 'chinese_sp.model', 'merged_reference.model']) {
    it(`parse → serialize is byte-identical for ${name}`, () => {
      const bytes = fixture(name);
      const proto = parseModelProto(bytes, name);
      const out = serializeModelProto(proto);
      expect(out.length).toBe(bytes.length);
      expect(Buffer.from(out).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  it('reads the fixture models as SentencePiece describes them', () => {
    const llama = parseModelProto(fixture('llama_tokenizer.model'));
    expect(llama.pieces.length).toBe(32000);
    expect(llama.trainerSpec?.modelType).toBe(2); // BPE
    expect(llama.trainerSpec?.byteFallback).toBe(true);
    expect(llama.pieces[0]).toMatchObject({ piece: '<unk>', type: PieceType.UNKNOWN });
    expect(llama.pieces[3]).toMatchObject({ piece: '<0x00>', type: PieceType.BYTE });
    const zh = parseModelProto(fixture('chinese_sp.model'));
    expect(zh.pieces.length).toBe(20000);
    expect(zh.trainerSpec?.modelType).toBe(1); // UNIGRAM
    expect(zh.trainerSpec?.characterCoverage).toBeCloseTo(0.9995, 6);
    const merged = parseModelProto(fixture('merged_reference.model'));
    expect(merged.pieces.length).toBe(49953);
  });

  it('keeps field presence: appended reference pieces have piece + score, no type', () => {
    const merged = parseModelProto(fixture('merged_reference.model'));
    const added = merged.pieces[32000];
    expect(Object.hasOwn(added, 'piece')).toBe(true);
    expect(Object.hasOwn(added, 'score')).toBe(true);
    expect(Object.hasOwn(added, 'type')).toBe(false);
    expect(added.score).toBe(0);
    expect(added.type).toBe(PieceType.NORMAL); // proto2 default when absent
  });

  it('preserves unknown fields at every level', () => {
    const bytes = fixture('chinese_sp.model');
    // Append a top-level unknown field 201 (string) and an extension inside a piece, built with a
    // plain protobuf writer so the test does not rely on our own encoder.
    const extra = protobuf.Writer.create()
      .uint32((201 << 3) | 2)
      .string('hello from the future')
      .finish();
    const withTop = new Uint8Array(bytes.length + extra.length);
    withTop.set(bytes);
    withTop.set(extra, bytes.length);
    const proto = parseModelProto(withTop);
    expect(proto.$unknowns?.length).toBe(1);
    expect(Buffer.from(serializeModelProto(proto)).equals(Buffer.from(withTop))).toBe(true);

    // An unknown varint field 250 inside the first piece.
    const piece = proto.pieces[0];
    const pieceExtra = protobuf.Writer.create()
      .uint32((250 << 3) | 0)
      .uint32(7)
      .finish();
    piece.$unknowns = [pieceExtra];
    const again = parseModelProto(serializeModelProto(proto));
    expect(again.pieces[0].$unknowns?.map((u) => Buffer.from(u).toString('hex'))).toEqual([Buffer.from(pieceExtra).toString('hex')]);
    expect(again.pieces[0].piece).toBe(piece.piece);
    expect(again.$unknowns?.length).toBe(1);
  });

  it('rejects bytes that are not a SentencePiece model', () => {
    const json = new TextEncoder().encode('{"name": "not a model"}\n');
    expect(() => parseModelProto(json, 'package.json')).toThrow(ModelFormatError);
    expect(() => parseModelProto(new Uint8Array(0))).toThrow(/empty/);
  });

  it('rejects a truncated model', () => {
    const bytes = fixture('llama_tokenizer.model');
    const cut = bytes.subarray(0, Math.floor(bytes.length / 2));
    expect(() => parseModelProto(cut, 'cut.model')).toThrow(/truncated|not a SentencePiece model/);
    // cut exactly between two pieces: still decodes as protobuf, but the specs are missing
    expect(() => parseModelProto(bytes.subarray(0, 100_000), 'cut.model')).toThrow(/truncated or incomplete/);
  });

  it('validateModelProto finds duplicate pieces and a missing <unk>', () => {
    const proto = parseModelProto(fixture('llama_tokenizer.model'));
    expect(() => validateModelProto(proto)).not.toThrow();
    proto.pieces.push({ piece: '▁the', score: 0 });
    expect(() => validateModelProto(proto)).toThrow(/appears twice/);
    const proto2 = parseModelProto(fixture('llama_tokenizer.model'));
    proto2.pieces[0].type = PieceType.NORMAL;
    expect(() => validateModelProto(proto2)).toThrow(/UNKNOWN/);
  });

  it('readModelProto accepts a folder with tokenizer.model', async () => {
    await expect(readModelProto(FIXTURES)).rejects.toThrow(/without tokenizer.model/);
    const p = await readModelProto(path.join(FIXTURES, 'chinese_sp.model'));
    expect(p.pieces.length).toBe(20000);
  });
});
