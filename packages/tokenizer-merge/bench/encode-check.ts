/**
 * Cross-check the TypeScript encoder against sentencepiece-js on text files, printing mismatches.
 * Usage: npx tsx bench/encode-check.ts <model> <file.txt|file.jsonl> [maxLines]
 */
import { readFileSync } from 'node:fs';
import { SentencePieceProcessor } from 'sentencepiece-js';
import { parseModelProto } from '../src/proto.js';
import { SentencePieceEncoder } from '../src/encoder/index.js';

const [modelPath, file, maxArg] = process.argv.slice(2);
const max = maxArg ? Number(maxArg) : Infinity;
const raw = readFileSync(file, 'utf8');
let lines: string[];
if (file.endsWith('.jsonl'))
  lines = raw
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string);
else if (file.endsWith('.json')) lines = (JSON.parse(raw) as Array<Record<string, string>>).flatMap((r) => [r.instruction, r.input, r.output].filter(Boolean));
else lines = raw.split('\n');
lines = lines.slice(0, max);
const enc = new SentencePieceEncoder(parseModelProto(new Uint8Array(readFileSync(modelPath))));
const spp = new SentencePieceProcessor();
await spp.load(modelPath);
let same = 0;
let diff = 0;
let decSame = 0;
for (const line of lines) {
  const want = line.length > 0 ? spp.encodeIds(line) : [];
  const got = enc.encode(line);
  if (JSON.stringify(want) === JSON.stringify(got)) same++;
  else {
    diff++;
    if (diff <= 3) {
      console.log('MISMATCH', JSON.stringify(line.slice(0, 200)));
      console.log(' want', want.slice(0, 40).join(' '));
      console.log(' got ', got.slice(0, 40).join(' '));
    }
  }
  if (want.length > 0 && spp.decodeIds(want) === enc.decode(want)) decSame++;
}
console.log(`${modelPath.split('/').pop()} ${file.split('/').pop()}: ${same}/${lines.length} identical, ${diff} differ; decode identical ${decSame}`);
