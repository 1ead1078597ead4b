/**
 * `encode --file` keeps a byte-order mark (U+FEFF) that opens the file or a line, as `--text`, Python's
 * open(encoding='utf-8'), Python sentencepiece and transformers do. Before, TextDecoder's default dropped
 * it from every line, so those lines got other ids than every other tool gives.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runEncode, utf8Lines } from '../src/cli/encode.js';

const MODEL = new URL('../../../test-fixtures/tokenizers/llama_tokenizer.model', import.meta.url).pathname;

describe('encode --file and a BOM', () => {
  it('utf8Lines keeps U+FEFF at the start of the file and of a later line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cllama-bom-'));
    try {
      const file = path.join(dir, 'lines.txt');
      await writeFile(file, '\ufeffa\r\n\ufeffb\nc');
      const lines: string[] = [];
      for await (const line of utf8Lines(file, () => undefined)) lines.push(line);
      expect(lines).toEqual(['\ufeffa', '\ufeffb', 'c']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the first line of a file gets the ids --text gives for the same characters', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cllama-bom-'));
    try {
      const file = path.join(dir, 'bom.txt');
      await writeFile(file, '\ufeffhello 世界\n');
      const fromFile: string[] = [];
      const fromText: string[] = [];
      await runEncode({ model: MODEL, file }, (l) => fromFile.push(l));
      await runEncode({ model: MODEL, text: '\ufeffhello 世界' }, (l) => fromText.push(l));
      const plain: string[] = [];
      await runEncode({ model: MODEL, text: 'hello 世界' }, (l) => plain.push(l));
      expect(fromFile).toEqual(fromText);
      expect(fromFile).not.toEqual(plain);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
