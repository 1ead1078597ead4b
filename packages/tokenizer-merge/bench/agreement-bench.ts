/**
 * The figures of docs/tokenizer-merge.md, measured on the shared data. Run by hand from the repo root:
 *   npx tsx packages/tokenizer-merge/bench/agreement-bench.ts
 * Reads ../shared (beside the repository): fixtures/tokenizers/{llama_tokenizer,chinese_sp}.model,
 * data/zh_corpus.txt (held-out lines 74,701+) and data/c4_demo.jsonl. Prints, for the reference merge
 * and for --distinct-scores: SentencePiece vs tokenizer.json disagreements on 3,000 Chinese lines +
 * 300 English documents, tokens/char on zh_corpus.txt lines 74,701–83,029, unreachable pieces, timings.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeTokenizers } from '../src/merge-tokenizer.js';
import { readModelProto } from '../src/proto.js';
import { createSentencePieceTokenizer, readHfAddedTokensFromFiles } from '../src/tokenizer.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const shared = path.resolve(repoRoot, '../shared');

const base = await readModelProto(path.join(shared, 'fixtures/tokenizers/llama_tokenizer.model'));
const zh = await readModelProto(path.join(shared, 'fixtures/tokenizers/chinese_sp.model'));
const corpus = readFileSync(path.join(shared, 'data/zh_corpus.txt'), 'utf8').split('\n');
const zhSample = corpus.slice(74_700, 77_700);
const heldOut = corpus.slice(74_700, 83_029).filter((l) => l.trim().length > 0);
const enSample = readFileSync(path.join(shared, 'data/c4_demo.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0)
  .map((l) => (JSON.parse(l) as { text: string }).text);

const heldOutChars = heldOut.reduce((n, l) => n + Array.from(l).length, 0);
for (const distinctScores of [false, true]) {
  const t0 = performance.now();
  const zhResult = await mergeTokenizers(base, [zh], { distinctScores, sampleLines: zhSample });
  const t1 = performance.now();
  const enResult = await mergeTokenizers(base, [zh], { distinctScores, sampleLines: enSample });
  const config = JSON.parse(zhResult.files['tokenizer_config.json']) as Record<string, unknown>;
  const sp = await createSentencePieceTokenizer(zhResult.model, readHfAddedTokensFromFiles(config, undefined, undefined, zhResult.model.pieces.length));
  let tokens = 0;
  for (const line of heldOut) tokens += sp.encode(line).length;
  const zhA = zhResult.agreement!;
  const enA = enResult.agreement!;
  console.log(
    `${distinctScores ? '--distinct-scores' : 'reference (score 0)'}: ` +
      `disagree on ${zhA.disagreements + enA.disagreements} of ${zhA.lines + enA.lines} ` +
      `(zh ${zhA.disagreements}/${zhA.lines}, en ${enA.disagreements}/${enA.lines}); ` +
      `held-out tokens/char ${(tokens / heldOutChars).toFixed(4)} over ${heldOut.length} lines; ` +
      `unreachable ${zhResult.unreachable.length}; merge+export+check(zh) ${(t1 - t0).toFixed(0)} ms`,
  );
}
