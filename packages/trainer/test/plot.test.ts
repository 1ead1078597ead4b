/**
 * The training plot on logs that broke it (issue 21 #9): 200 k metric lines (a `Math.min(...points)`
 * overflowed the stack past ~130 k), losses of ±1e308 (hi − lo overflowed: NaN paths), control
 * characters in --title (SVG that is not XML), and memory bounded by the plot, not by metrics.jsonl
 * (the CLI under a 40 MB V8 heap on a 1.2 M-line file). Well-formedness is checked by a small XML
 * checker here and by Python's expat.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../src/train/checkpoint.js';
import { Envelope, MAX_BUCKETS, renderTrainingPlot } from '../src/train/plot.js';

const PKG = path.resolve(__dirname, '..');
const CLI = path.join(PKG, 'dist/cli.js');
let root: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-plot-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const XML_CHAR = /^[\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const ENTITY = /&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
const NAME = '[A-Za-z_:][-A-Za-z0-9_:.]*';
const ATTRS = `(?:\\s+${NAME}\\s*=\\s*"[^"<]*")*`;

/** A small XML 1.0 well-formedness check: allowed characters, one root, balanced tags, quoted attributes, known entities. */
function assertWellFormedXml(xml: string): void {
  expect(XML_CHAR.test(xml), 'characters XML does not allow').toBe(true);
  const stack: string[] = [];
  let roots = 0;
  const token = /<[^>]*>|[^<]+/g;
  for (const [t] of xml.matchAll(token)) {
    if (!t.startsWith('<')) {
      expect(stack.length > 0 || t.trim() === '', `text outside the root: ${t.slice(0, 40)}`).toBe(true);
      expect(t.replace(ENTITY, '').includes('&'), `bare & in ${t.slice(0, 40)}`).toBe(false);
      continue;
    }
    expect(t.replace(ENTITY, '').includes('&'), `bare & in ${t.slice(0, 40)}`).toBe(false);
    const close = new RegExp(`^</(${NAME})\\s*>$`).exec(t);
    if (close) {
      expect(stack.pop(), `unbalanced ${t}`).toBe(close[1]);
      continue;
    }
    const open = new RegExp(`^<(${NAME})${ATTRS}\\s*(/?)>$`).exec(t);
    expect(open, `malformed tag ${t.slice(0, 80)}`).not.toBeNull();
    if (stack.length === 0) roots += 1;
    if (open![2] !== '/') stack.push(open![1]!);
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

/** Python's expat, a real XML parser: true when it parses the file. */
function expatParses(file: string): boolean {
  const py = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import xml.parsers.expat'], { encoding: 'utf8' }).status === 0);
  expect(py, 'python3 with xml.parsers.expat').toBeDefined();
  const r = spawnSync(py!, ['-c', 'import sys, xml.parsers.expat as e; e.ParserCreate().ParseFile(open(sys.argv[1], "rb"))', file], { encoding: 'utf8' });
  return r.status === 0;
}

/** Every coordinate of every path / circle / line: finite and inside the 720 × 470 canvas. */
function coordinates(svg: string): number[] {
  const nums: number[] = [];
  for (const [, d] of svg.matchAll(/ d="([^"]*)"/g)) for (const n of d!.split(/[ML, ]+/).filter(Boolean)) nums.push(Number(n));
  for (const [, v] of svg.matchAll(/ (?:cx|cy|x1|x2|y1|y2)="([^"]*)"/g)) nums.push(Number(v));
  return nums;
}

function pathPoints(svg: string): number[] {
  return [...svg.matchAll(/<path d="([^"]*)"/g)].map(([, d]) => d!.split(' ').length);
}

async function writeMetrics(file: string, lines: number, entry: (i: number) => LogEntry): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < lines; i++) {
    if (!out.write(`${JSON.stringify(entry(i))}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

const lossAt = (i: number) => 10 * Math.exp(-i / 50_000) + 0.01 * Math.sin(i);

describe('cllama-train plot and the trainer plot on long and extreme logs', () => {
  it('200,000 metric lines: the CLI draws them (downsampled, the spike kept) instead of "Maximum call stack size exceeded"', async () => {
    const dir = path.join(root, 'long');
    await fs.mkdir(dir);
    await writeMetrics(path.join(dir, 'metrics.jsonl'), 200_000, (i) => ({
      step: i + 1,
      epoch: i / 1000,
      loss: i === 123_456 ? 42 : lossAt(i),
      learning_rate: 1e-4 * (1 - i / 200_000),
      ...(i % 1000 === 0 ? { eval_loss: lossAt(i) + 0.5 } : {}),
    }));
    const r = spawnSync(process.execPath, [CLI, 'plot', dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/wrote .*training_plot\.svg \(200000 metric lines\)/);
    const file = path.join(dir, 'training_plot.svg');
    const svg = await fs.readFile(file, 'utf8');
    assertWellFormedXml(svg);
    expect(expatParses(file)).toBe(true);
    const points = pathPoints(svg);
    expect(points).toHaveLength(3);
    for (const n of points) expect(n).toBeLessThanOrEqual(4 * MAX_BUCKETS);
    expect(points[0]).toBeGreaterThan(MAX_BUCKETS); // still a detailed curve
    // the loss axis reaches the spike of 42 (a tick at 40), and the x axis the last step
    expect(svg).toMatch(/>40<\/text>/);
    expect(svg).toMatch(/>2\.0e\+5<\/text>/);
    for (const v of coordinates(svg)) expect(Number.isFinite(v)).toBe(true);
  });

  it('the in-process renderer (the trainer at every checkpoint) takes a 200,000-entry history too', () => {
    const history = Array.from({ length: 200_000 }, (_, i) => ({ step: i + 1, epoch: 0, loss: lossAt(i), learning_rate: 1e-4 }));
    const svg = renderTrainingPlot(history, { title: 'long', maxSteps: 300_000 });
    assertWellFormedXml(svg);
    for (const n of pathPoints(svg)) expect(n).toBeLessThanOrEqual(4 * MAX_BUCKETS);
  });

  it('losses of ±1e308 and ±Number.MAX_VALUE draw finite coordinates inside the canvas; ±Infinity and NaN are left out', () => {
    for (const [lo, hi] of [
      [-1e308, 1e308],
      [-Number.MAX_VALUE, Number.MAX_VALUE],
      [Number.MAX_VALUE, Number.MAX_VALUE],
      [1e308, 1e308 * 1.0000001],
    ]) {
      const history: LogEntry[] = [
        { step: 1, epoch: 0, loss: 2, learning_rate: 1e308 },
        { step: 2, epoch: 0, loss: lo!, learning_rate: -1e308 },
        { step: 3, epoch: 0, loss: hi!, eval_loss: Infinity },
        { step: 4, epoch: 0, loss: Number.NaN, eval_loss: -Number.MAX_VALUE },
        { step: 5, epoch: 0, loss: -Infinity, eval_loss: 1 },
      ];
      const svg = renderTrainingPlot(history, { maxSteps: 5 });
      expect(svg).not.toMatch(/NaN|Infinity/);
      assertWellFormedXml(svg);
      const coords = coordinates(svg);
      expect(coords.length).toBeGreaterThan(10);
      for (const v of coords) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(720);
      }
      expect(pathPoints(svg)).toEqual([3, 2, 2]);
    }
  });

  it('a --title with control characters, lone surrogates and markup gives well-formed XML with the visible text kept', async () => {
    const dir = path.join(root, 'title');
    await fs.mkdir(dir);
    await writeMetrics(path.join(dir, 'metrics.jsonl'), 3, (i) => ({ step: i + 1, epoch: 0, loss: 3 - i }));
    const title = 'run\x01\x07\x1b[31m <b>&"x\'\uFFFE\uD800 é 中\u{1F600}\x7f';
    const r = spawnSync(process.execPath, [CLI, 'plot', dir, '--title', title], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const file = path.join(dir, 'training_plot.svg');
    const svg = await fs.readFile(file, 'utf8');
    assertWellFormedXml(svg);
    expect(expatParses(file)).toBe(true);
    // argv cannot carry a lone surrogate: it arrives as U+FFFD
    expect(svg).toContain('>run[31m &lt;b&gt;&amp;&quot;x&apos;\uFFFD é 中\u{1F600}\x7f</text>');
    // in-process (the trainer's --title-less plot, library callers) the lone surrogate itself is dropped
    const direct = renderTrainingPlot([{ step: 1, epoch: 0, loss: 1 }], { title });
    assertWellFormedXml(direct);
    expect(direct).toContain('>run[31m &lt;b&gt;&amp;&quot;x&apos; é 中\u{1F600}\x7f</text>');
  });

  it('memory is bounded by the plot: 1.2 M lines (~110 MB) under a 40 MB V8 heap', async () => {
    const dir = path.join(root, 'huge');
    await fs.mkdir(dir);
    await writeMetrics(path.join(dir, 'metrics.jsonl'), 1_200_000, (i) => ({
      step: i + 1,
      epoch: i / 1e4,
      loss: lossAt(i),
      learning_rate: 3e-4,
      grad_norm: 1.5,
    }));
    expect((await fs.stat(path.join(dir, 'metrics.jsonl'))).size).toBeGreaterThan(100e6);
    const r = spawnSync(process.execPath, ['--max-old-space-size=40', CLI, 'plot', dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\(1200000 metric lines\)/);
    assertWellFormedXml(await fs.readFile(path.join(dir, 'training_plot.svg'), 'utf8'));
  }, 180_000);

  it('a line longer than 1 MiB or one that is not a JSON object is one line naming file:line, exit 1', async () => {
    for (const [name, content, message] of [
      ['longline', `{"step":1,"loss":2}\n{"step":2,"note":"${'x'.repeat(2 << 20)}"}\n`, /metrics\.jsonl:2: line longer than 1048576 bytes/],
      ['notjson', '{"step":1,"loss":2}\n{"step":2,"loss":\n', /metrics\.jsonl:2: not JSON/],
      ['nostep', '{"step":1,"loss":2}\n{"loss":2}\n', /metrics\.jsonl:2: no numeric "step"/],
    ] as const) {
      const dir = path.join(root, name);
      await fs.mkdir(dir);
      await fs.writeFile(path.join(dir, 'metrics.jsonl'), content);
      const r = spawnSync(process.execPath, ['--max-old-space-size=64', CLI, 'plot', dir], { encoding: 'utf8' });
      expect(r.status, name).toBe(1);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(message);
    }
  });

  it("the envelope keeps every bucket's lowest and highest point, in order, and stays within 4 · MAX_BUCKETS points", () => {
    const env = new Envelope(10);
    for (let i = 0; i < 10_000; i++) env.add(i, i === 7777 ? 100 : i === 3333 ? -100 : 0);
    const pts = env.points();
    expect(pts.length).toBeLessThanOrEqual(40);
    expect(pts).toContainEqual([7777, 100]);
    expect(pts).toContainEqual([3333, -100]);
    for (let i = 1; i < pts.length; i++) expect(pts[i]![0]).toBeGreaterThan(pts[i - 1]![0]);
    expect([env.count, env.minY, env.maxY]).toEqual([10_000, -100, 100]);
  });
});
