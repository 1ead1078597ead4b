import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DATA, LLAMA_BOS, LLAMA_EOS, loadSentencePiece, MERGED_MODEL, type SpProcessor } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-cli-'));
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// The reference algorithm (build_dataset.py) on real SentencePiece, written out here without our code.
const PROMPT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response: ';
function reference(sp: SpProcessor, rec: { instruction: string; input: string; output: string }) {
  const instruction = rec.input !== '' ? `${rec.instruction}\n${rec.input}` : rec.instruction;
  const s = [LLAMA_BOS, ...sp.encodeIds(PROMPT.replace('{instruction}', () => instruction))];
  const t = [...sp.encodeIds(rec.output), LLAMA_EOS];
  return { input_ids: [...s, ...t].slice(0, 512), labels: [...s.map(() => -100), ...t].slice(0, 512) };
}

describe('cllama-data CLI', () => {
  let sp: SpProcessor;
  beforeAll(async () => {
    sp = await loadSentencePiece();
  });

  it('tokenize --kind sft → dump --jsonl equals the reference for every demo record', () => {
    const files = ['alpaca_zh_demo.json', 'alpaca_en_demo.json'].map((f) => path.join(DATA, f));
    const out = path.join(tmp, 'sft');
    const t = run('tokenize', '--kind', 'sft', '--tokenizer', MERGED_MODEL, '--input', ...files, '--out', out, '--quiet');
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^1999 examples \(\d+ tokens\) from 1999 records/);
    const d = run('dump', out, '--jsonl');
    expect(d.code).toBe(0);
    const dumped = d.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const records = files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(dumped.length).toBe(records.length);
    records.forEach((rec, i) => expect(dumped[i]).toEqual(reference(sp, rec)));

    const text = run('dump', out, '--n', '1', '--start', '1');
    expect(text.out).toMatch(/^#1 {2}\d+ tokens, \d+ trained\n⟦<s> Below is an instruction/);
    expect(text.out).toContain('### Response: ⟧');
    const stats = run('stats', out, '--json');
    expect(JSON.parse(stats.out)).toMatchObject({ kind: 'sft', count: 1999 });
  });

  it('tokenize --kind pt gives the reference blocks: [BOS]+line, concatenated, full blocks only', () => {
    const zh = JSON.parse(readFileSync(path.join(DATA, 'alpaca_zh_demo.json'), 'utf8')) as { output: string }[];
    const lines = zh.slice(0, 60).map((r) => r.output.replace(/\n/g, ' '));
    lines.splice(10, 0, '', 'The primary use of LLaMA is research on large language models.');
    const txt = path.join(tmp, 'corpus.txt');
    writeFileSync(txt, lines.join('\r\n') + '\n');
    const out = path.join(tmp, 'pt');
    const t = run('tokenize', '--kind', 'pt', '--tokenizer', MERGED_MODEL, '--input', txt, '--out', out, '--block-size', '128');
    expect(t.code).toBe(0);
    const stream = lines.flatMap((l) => [LLAMA_BOS, ...sp.encodeIds(l)]);
    const n = Math.floor(stream.length / 128);
    expect(n).toBeGreaterThan(10);
    const blocks = run('dump', out, '--jsonl')
      .out.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(blocks.length).toBe(n);
    expect(blocks.flatMap((b) => b.input_ids)).toEqual(stream.slice(0, n * 128));
    expect(blocks.every((b) => JSON.stringify(b.labels) === JSON.stringify(b.input_ids))).toBe(true);
  });

  it('convert --from pclue keeps all 705; mix is reproducible byte for byte and its report adds up', () => {
    const p = path.join(tmp, 'pclue.jsonl');
    const c = run('convert', '--from', 'pclue', path.join(DATA, 'pCLUE_train_9.json'), '--out', p);
    expect(c.code).toBe(0);
    expect(c.out).toContain('read 705, wrote 705 records');
    expect(readFileSync(p, 'utf8').trim().split('\n').length).toBe(705);
    const mix = (o: string, r: string) =>
      run(
        'mix',
        '--source',
        `pclue=${p}:300`,
        '--source',
        `zh=${path.join(DATA, 'alpaca_zh_demo.json')}:2K`,
        '--seed',
        '3',
        '--out',
        o,
        '--report',
        r,
        '--replacement',
      );
    expect(mix(path.join(tmp, 'm1.jsonl'), path.join(tmp, 'r1.md')).code).toBe(0);
    expect(mix(path.join(tmp, 'm2.jsonl'), path.join(tmp, 'r2.md')).code).toBe(0);
    expect(readFileSync(path.join(tmp, 'm1.jsonl')).equals(readFileSync(path.join(tmp, 'm2.jsonl')))).toBe(true);
    const report = readFileSync(path.join(tmp, 'r1.md'), 'utf8');
    expect(report).toBe(readFileSync(path.join(tmp, 'r2.md'), 'utf8'));
    const total = /\| \*\*total\*\* \| \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|/.exec(report)!.slice(1).map(Number);
    const [read, invalid, dropped, pool, requested, sampled] = total;
    expect(read).toBe(1705);
    expect(read).toBe(invalid + dropped + pool);
    expect(requested).toBe(2300);
    expect(sampled).toBe(2300);
    expect(readFileSync(path.join(tmp, 'm1.jsonl'), 'utf8').trim().split('\n').length).toBe(sampled);
  });

  it('prints --help and one-line errors with a non-zero exit', () => {
    expect(run('--help').out).toMatch(/convert.*\n[\s\S]*mix[\s\S]*tokenize[\s\S]*dump[\s\S]*stats/);
    for (const cmd of ['convert', 'mix', 'tokenize', 'dump', 'stats']) expect(run(cmd, '--help').code).toBe(0);
    const cases = [
      run('dump', path.join(tmp, 'missing')),
      run('convert', '--from', 'pclue', path.join(tmp, 'nope.json'), '--out', path.join(tmp, 'x.jsonl')),
      run('mix', '--source', 'broken', '--seed', '1', '--out', path.join(tmp, 'y.jsonl')),
      run('tokenize', '--kind', 'sft', '--tokenizer', path.join(tmp, 'no.model'), '--input', 'a.json', '--out', path.join(tmp, 'z')),
      run('convert', '--from', 'nosuch', 'a', '--out', 'b'),
    ];
    for (const r of cases) {
      expect(r.code).not.toBe(0);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
    expect(cases[1].err).toMatch(/nope.json: file not found/);
  });

  it('skips bad records with warnings, and --strict makes them fatal', () => {
    const bad = path.join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"instruction": "a", "output": "b"}\n{"instruction": "no output"}\n{"instruction": "c", "output": "d"}\n');
    const ok = run('tokenize', '--kind', 'sft', '--tokenizer', MERGED_MODEL, '--input', bad, '--out', path.join(tmp, 'b1'));
    expect(ok.code).toBe(0);
    expect(ok.err).toMatch(/warning: .*bad.jsonl line 2: missing field "output"/);
    expect(ok.out).toMatch(/^2 examples .* 1 skipped/);
    const enc = path.join(tmp, 'enc.json');
    writeFileSync(
      enc,
      Buffer.concat([
        Buffer.from('[{"input": "ok", "target": "a", "type": "x"},\n{"input": "bad '),
        Buffer.from([0xff]),
        Buffer.from('", "target": "b"},\n{"input": 7, "target": "c"},\n{"input": "fine", "target": "d"}]'),
      ]),
    );
    const conv = run('convert', '--from', 'pclue', enc, '--out', path.join(tmp, 'enc.jsonl'));
    expect(conv.code).toBe(0);
    expect(conv.out).toContain('read 4, wrote 2 records');
    expect(conv.err).toMatch(/enc.json record 2 \(line 2\): not valid UTF-8/);
    expect(conv.err).toMatch(/enc.json record 3 \(line 3\): field "input" must be a string, got number/);
    const strict = run('tokenize', '--kind', 'sft', '--tokenizer', MERGED_MODEL, '--input', bad, '--out', path.join(tmp, 'b2'), '--strict');
    expect(strict.code).toBe(1);
    expect(strict.err).toMatch(/^cllama-data: .*bad.jsonl line 2: missing field "output"\n$/);
  });
});
