/**
 * Writes test-fixtures/data/unigram_golden.json: for each UNIGRAM case of test/encoder-fixtures.ts,
 * Python sentencepiece's ids and pieces, kept as a sha256 of all of them plus, in full, the texts
 * where they differ from sentencepiece-js (as an edit of its list) (the C++ library of the 0.1.x line, compiled to wasm). The
 * encoder tests then check every text exactly against Python sentencepiece without Python.
 * Usage (in packages/tokenizer-merge; the interpreter must import sentencepiece 0.2.2, e.g. the
 * interop venv): PYTHON=../../.venv-interop/bin/python npx tsx bench/unigram-golden.ts
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentencePieceProcessor } from 'sentencepiece-js';
import { serializeModelProto } from '../src/proto.js';
import { UNIGRAM_GOLDEN, type UnigramDifference, type UnigramGolden, difference, unigramCases } from '../test/encoder-fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env.PYTHON ?? 'python3';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cllama-unigram-golden-'));
const sha256 = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');
const head = (t: string) => [...t].slice(0, 40).join('');

try {
  const cases = unigramCases();
  const jobs = cases.map((c, i) => {
    const model = path.join(tmp, `m${i}.model`);
    writeFileSync(model, serializeModelProto(c.proto));
    return { model, texts: c.texts, pieceTexts: c.pieceTexts };
  });
  writeFileSync(path.join(tmp, 'jobs.json'), JSON.stringify(jobs));
  execFileSync(python, [path.join(here, 'unigram-golden.py'), path.join(tmp, 'jobs.json'), path.join(tmp, 'out.json')], { stdio: 'inherit' });
  const out = JSON.parse(readFileSync(path.join(tmp, 'out.json'), 'utf8')) as { version: string; results: Array<{ ids: number[][]; pieces: string[][] }> };
  const golden: UnigramGolden = {
    generator: `Python sentencepiece ${out.version}`,
    about:
      'UNIGRAM ids/pieces of Python sentencepiece (what users install today) for the cases of packages/tokenizer-merge/test/encoder-fixtures.ts: sha256 of all, and in full where sentencepiece-js (0.1.x) differs (0.2.x decides exact score ties in float32, rescales the path score on very long lines and scores user-defined pieces 0.1 x (bytes - 1)). Regenerate with packages/tokenizer-merge/bench/unigram-golden.ts.',
    cases: [],
  };
  for (const [i, c] of cases.entries()) {
    const spp = new SentencePieceProcessor();
    await spp.load(jobs[i]!.model);
    const { ids, pieces } = out.results[i]!;
    const idDiffs: Array<UnigramDifference<number>> = [];
    c.texts.forEach((t, k) => {
      const js = t.length > 0 ? spp.encodeIds(t) : [];
      if (JSON.stringify(js) !== JSON.stringify(ids[k])) idDiffs.push(difference(k, head(t), js, ids[k]!));
    });
    const pieceDiffs: Array<UnigramDifference<string>> = [];
    c.pieceTexts.forEach((t, k) => {
      const js = t.length > 0 ? spp.encodePieces(t) : [];
      if (JSON.stringify(js) !== JSON.stringify(pieces[k])) pieceDiffs.push(difference(k, head(t), js, pieces[k]!));
    });
    golden.cases.push({ name: c.name, texts: c.texts.length, idsSha256: sha256(ids), piecesSha256: sha256(pieces), ids: idDiffs, pieces: pieceDiffs });
    console.log(
      `${c.name}: ${c.texts.length} texts, ${idDiffs.length} with ids unlike sentencepiece-js; ${c.pieceTexts.length} piece texts, ${pieceDiffs.length} unlike`,
    );
  }
  writeFileSync(UNIGRAM_GOLDEN, `${JSON.stringify(golden)}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
