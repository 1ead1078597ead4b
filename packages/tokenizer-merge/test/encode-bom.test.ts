/**
 * `encode --file` keeps a byte-order mark (U+FEFF) that opens the file or a line, as `--text`, Python's
 * open(encoding='utf-8'), Python sentencepiece and transformers do. Before, TextDecoder's default dropped
 * it from every line, so those lines got other ids than every other tool gives.
 */
import { describe, expect, it } from 'vitest';
import { runEncode, utf8Lines } from '../src/cli/encode.js';

const MODEL = new URL('../../../test-fixtures/tokenizers/llama_tokenizer.model', import.meta.url).pathname;
const enc = (s: string) => new TextEncoder().encode(s);

describe('encode --file and a BOM', () => {
  it('utf8Lines keeps U+FEFF at the start of the file and of a later line', () => {
    expect(utf8Lines('f', enc('\ufeffa\r\n\ufeffb\nc'), () => undefined)).toEqual(['\ufeffa', '\ufeffb', 'c']);
  });

  it('the first line of a file gets the ids --text gives for the same characters', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
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
