import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSftExample, type AlpacaRecord } from '../src/sft.js';
import { formatPrompt, REFERENCE_TEMPLATE, resolveTemplate, STANFORD_ALPACA_TEMPLATE } from '../src/template.js';
import { loadTokenizer, type Tokenizer } from '@cllama/tokenizer-merge';
import { DATA, LLAMA_BOS, LLAMA_EOS, loadSentencePiece, MERGED_MODEL, type SpProcessor } from './helpers.js';

// build_dataset.py's algorithm written out independently, on real SentencePiece, without our code.
const PROMPT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response: ';
function reference(sp: SpProcessor, rec: AlpacaRecord, maxSeqLength: number) {
  let instruction = rec.instruction;
  if (rec.input !== undefined && rec.input !== '') instruction = instruction + '\n' + rec.input;
  const source = PROMPT.split('{instruction}').join(instruction);
  const s = [LLAMA_BOS, ...sp.encodeIds(source)];
  const t = [...sp.encodeIds(rec.output), LLAMA_EOS];
  return {
    inputIds: [...s, ...t].slice(0, maxSeqLength),
    labels: [...s.map(() => -100), ...t].slice(0, maxSeqLength),
  };
}

describe('prompt template', () => {
  it('is build_dataset.py byte for byte, with the trailing space, input after a newline', () => {
    expect(formatPrompt({ instruction: 'Say hi', input: '' })).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi\n\n### Response: ',
    );
    expect(formatPrompt({ instruction: '翻译', input: 'hello' })).toContain('### Instruction:\n翻译\nhello\n\n### Response: ');
    expect(REFERENCE_TEMPLATE.withoutInput.endsWith('### Response: ')).toBe(true);
  });
  it('fills placeholders once, so braces in the data stay as they are', () => {
    expect(formatPrompt({ instruction: 'use {input} and {instruction}', input: 'x{instruction}' })).toContain(
      'use {input} and {instruction}\nx{instruction}\n\n',
    );
  });
  it('supports the Stanford template and custom texts', () => {
    const s = formatPrompt({ instruction: 'A', input: 'B' }, STANFORD_ALPACA_TEMPLATE);
    expect(s).toContain('### Input:\nB\n\n### Response:\n');
    expect(formatPrompt({ instruction: 'A' }, STANFORD_ALPACA_TEMPLATE)).not.toContain('### Input');
    expect(formatPrompt({ instruction: 'A', input: 'B' }, resolveTemplate('Q: {instruction} | {input} A:'))).toBe('Q: A | B A:');
    expect(formatPrompt({ instruction: 'A', input: 'B' }, resolveTemplate('Q: {instruction} A:'))).toBe('Q: A\nB A:');
    expect(() => resolveTemplate('no placeholder')).toThrow(/unknown template/);
  });
});

describe('buildSftExample against the reference algorithm on real SentencePiece', () => {
  let sp: SpProcessor;
  let tok: Tokenizer;
  beforeAll(async () => {
    sp = await loadSentencePiece();
    tok = await loadTokenizer(MERGED_MODEL); // the package's tokenizer, as the CLI uses it
    expect(tok.vocabSize).toBe(49953);
    expect([tok.bosId, tok.eosId]).toEqual([LLAMA_BOS, LLAMA_EOS]);
  });

  it('masks the source, ends the target with EOS, and the trailing template space is a final ▁ piece', () => {
    const ex = buildSftExample({ instruction: '你好', input: '', output: 'Hi there' }, tok);
    const sourceLen = 1 + sp.encodeIds(formatPrompt({ instruction: '你好' })).length;
    expect(ex.inputIds[0]).toBe(LLAMA_BOS);
    expect(ex.inputIds.at(-1)).toBe(LLAMA_EOS);
    expect(ex.labels.slice(0, sourceLen).every((l) => l === -100)).toBe(true);
    expect(ex.labels.slice(sourceLen)).toEqual(ex.inputIds.slice(sourceLen));
    expect(sp.encodePieces(formatPrompt({ instruction: '你好' })).at(-1)).toBe('▁');
    // The output gets SentencePiece's dummy prefix: "▁Hi", as the slow LlamaTokenizer produces.
    expect(sp.encodePieces('Hi there')[0]).toBe('▁Hi');
  });

  it('truncates the concatenation at maxSeqLength (a long prompt can leave no target)', () => {
    const rec = { instruction: 'x '.repeat(600), input: '', output: 'short' };
    const ex = buildSftExample(rec, tok, { maxSeqLength: 512 });
    expect(ex.inputIds.length).toBe(512);
    expect(ex.labels.every((l) => l === -100)).toBe(true);
    const ex2 = buildSftExample({ instruction: 'a', output: 'word '.repeat(100) }, tok, { maxSeqLength: 64 });
    expect(ex2).toEqual(reference(sp, { instruction: 'a', output: 'word '.repeat(100) }, 64));
    expect(ex2.inputIds.at(-1)).not.toBe(LLAMA_EOS);
  });

  it('equals Python sentencepiece 0.1.97 + build_dataset.py formatting (committed fixture) for every demo record', () => {
    // test-fixtures/data/sft_reference.json is written by scripts/make-sft-reference.py.
    const ref = JSON.parse(readFileSync(path.join(DATA, 'sft_reference.json'), 'utf8')) as {
      maxSeqLength: number;
      files: Record<string, { records: number; first: { input_ids: number[]; labels: number[] }[]; sha256: string[] }>;
    };
    for (const [file, expected] of Object.entries(ref.files)) {
      const records = JSON.parse(readFileSync(path.join(DATA, file), 'utf8')) as AlpacaRecord[];
      expect(records.length).toBe(expected.records);
      records.forEach((rec, i) => {
        const ex = buildSftExample(rec, tok, { maxSeqLength: ref.maxSeqLength });
        if (i < expected.first.length) {
          expect(ex.inputIds).toEqual(expected.first[i].input_ids);
          expect(ex.labels).toEqual(expected.first[i].labels);
        }
        const hash = createHash('sha256')
          .update(JSON.stringify([ex.inputIds, ex.labels]))
          .digest('hex')
          .slice(0, 32);
        expect(hash, `${file} record ${i + 1}`).toBe(expected.sha256[i]);
      });
    }
  });

  for (const file of ['alpaca_zh_demo.json', 'alpaca_en_demo.json']) {
    it(`matches for every record of ${file}`, () => {
      const records = JSON.parse(readFileSync(path.join(DATA, file), 'utf8')) as AlpacaRecord[];
      expect(records.length).toBeGreaterThan(900);
      let truncated = 0;
      let withInput = 0;
      for (const rec of records) {
        const ours = buildSftExample(rec, tok, { maxSeqLength: 512 });
        const ref = reference(sp, rec, 512);
        if (ref.inputIds.length === 512) truncated++;
        if (rec.input) withInput++;
        expect(ours.inputIds).toEqual(ref.inputIds);
        expect(ours.labels).toEqual(ref.labels);
      }
      // The files exercise both prompt shapes and (en) the truncation path.
      expect(withInput).toBeGreaterThan(100);
      if (file.startsWith('alpaca_en')) expect(truncated).toBeGreaterThan(0);
    });
  }
});
