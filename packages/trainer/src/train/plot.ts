/**
 * The training plot: training loss and eval loss against the optimizer step (top panel) and the
 * learning rate (bottom panel), as a self-contained SVG. Hand-written (a few line charts do not need a
 * charting library, and the candidates need a DOM or a canvas in Node).
 *
 * How this version differs from a plain line chart, so that any log draws, in bounded memory:
 * - Points go through a streaming min/max envelope (`Envelope`): each series keeps at most
 *   2 · MAX_BUCKETS buckets of consecutive points; when full, neighbouring buckets are merged pairwise
 *   and each bucket then stands for twice as many points. A bucket draws its lowest and its highest
 *   point, so spikes survive. Memory is O(MAX_BUCKETS) whatever the log's length: `TrainingPlotData`
 *   takes entries one at a time (the `plot` CLI streams metrics.jsonl through it), and no array of
 *   points is ever spread into a call (`Math.min(...pts)` overflowed the stack past ~130 k lines).
 * - Ranges are computed in loops, and every coordinate as lo/2 … hi/2 (exact in binary floating point),
 *   so finite values up to ±Number.MAX_VALUE give finite coordinates (hi − lo would overflow to
 *   Infinity and draw NaN); non-finite values are not drawn. Ticks are a bounded loop.
 * - Text (title, labels) is XML-escaped and characters XML 1.0 does not allow (control characters, lone
 *   surrogates, U+FFFE/U+FFFF) are dropped, so the SVG is always well-formed.
 */
import type { LogEntry } from './checkpoint.js';

const W = 720;
const PANEL_H = 220;
const M = { left: 70, right: 20, top: 30, bottom: 36 };
/** Buckets per series before they are merged pairwise (a series draws at most 4 · MAX_BUCKETS points). */
export const MAX_BUCKETS = 1000;
/** Series with at most this many points get a marker per point. */
const MARKERS_UP_TO = 60;

interface Bucket {
  n: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/** A series downsampled as it is read: consecutive points in buckets, each keeping its lowest and highest point. */
export class Envelope {
  private buckets: Bucket[] = [];
  /** Points per full bucket (doubles at every merge). */
  private stride = 1;
  /** Points added. */
  count = 0;
  minX = Infinity;
  maxX = -Infinity;
  minY = Infinity;
  maxY = -Infinity;

  constructor(private readonly maxBuckets = MAX_BUCKETS) {}

  add(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    this.count += 1;
    if (x < this.minX) this.minX = x;
    if (x > this.maxX) this.maxX = x;
    if (y < this.minY) this.minY = y;
    if (y > this.maxY) this.maxY = y;
    const last = this.buckets.at(-1);
    if (last && last.n < this.stride) {
      last.n += 1;
      if (y < last.minY) [last.minX, last.minY] = [x, y];
      if (y > last.maxY) [last.maxX, last.maxY] = [x, y];
      return;
    }
    this.buckets.push({ n: 1, minX: x, minY: y, maxX: x, maxY: y });
    if (this.buckets.length >= 2 * this.maxBuckets) this.merge();
  }

  private merge(): void {
    const merged: Bucket[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const a = this.buckets[i]!;
      const b = this.buckets[i + 1];
      if (!b) {
        merged.push(a);
        continue;
      }
      const lo = b.minY < a.minY ? b : a;
      const hi = b.maxY > a.maxY ? b : a;
      merged.push({ n: a.n + b.n, minX: lo.minX, minY: lo.minY, maxX: hi.maxX, maxY: hi.maxY });
    }
    this.buckets = merged;
    this.stride *= 2;
  }

  /** The points to draw, in reading order: each bucket's lowest and highest point (once when they coincide). */
  points(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const b of this.buckets) {
      const lowFirst = b.minX <= b.maxX;
      const first: [number, number] = lowFirst ? [b.minX, b.minY] : [b.maxX, b.maxY];
      const second: [number, number] = lowFirst ? [b.maxX, b.maxY] : [b.minX, b.minY];
      out.push(first);
      if (second[0] !== first[0] || second[1] !== first[1]) out.push(second);
    }
    return out;
  }
}

interface Series {
  key: string;
  label: string;
  color: string;
  dashed?: boolean;
}

const LOSS_SERIES: Series[] = [
  { key: 'loss', label: 'train loss', color: '#1f77b4' },
  { key: 'eval_loss', label: 'eval loss', color: '#d62728', dashed: true },
];
const LR_SERIES: Series[] = [{ key: 'learning_rate', label: 'lr', color: '#2ca02c' }];

/** The plot's data, gathered one log entry at a time in O(MAX_BUCKETS) memory. */
export class TrainingPlotData {
  readonly series = new Map<string, Envelope>();
  /** Largest finite step seen (the x axis reaches at least this far). */
  maxStep = -Infinity;
  minStep = Infinity;
  entries = 0;

  constructor(maxBuckets = MAX_BUCKETS) {
    for (const s of [...LOSS_SERIES, ...LR_SERIES]) this.series.set(s.key, new Envelope(maxBuckets));
  }

  add(entry: LogEntry): void {
    this.entries += 1;
    const step = entry.step;
    if (typeof step !== 'number' || !Number.isFinite(step)) return;
    if (step > this.maxStep) this.maxStep = step;
    if (step < this.minStep) this.minStep = step;
    for (const [key, env] of this.series) {
      const v = entry[key];
      if (typeof v === 'number') env.add(step, v);
    }
  }
}

/** Maps v in [lo, hi] onto [a, b], via halves so that hi − lo cannot overflow. */
function scale(v: number, lo: number, hi: number, a: number, b: number): number {
  return a + ((v / 2 - lo / 2) / (hi / 2 - lo / 2)) * (b - a);
}

/** Round numbers between lo and hi (at most 2 · count + 2 of them, in a bounded loop). */
function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = hi / count - lo / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= raw) ?? raw;
  if (!(step > 0) || !Number.isFinite(step)) return [lo, hi];
  const first = Math.ceil(lo / step);
  const ticks: number[] = [];
  for (let i = 0; i <= 2 * count + 1; i++) {
    const t = (first + i) * step;
    if (!Number.isFinite(t) || t > hi + step * 1e-9) break;
    const rounded = +t.toPrecision(12);
    if (ticks.at(-1) !== rounded) ticks.push(rounded);
  }
  return ticks.length > 0 ? ticks : [lo, hi];
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-2 ? v.toExponential(1) : `${+v.toPrecision(3)}`;
}

/** Characters XML 1.0 allows (Char production); everything else (C0 controls, lone surrogates, U+FFFE/F) is dropped. */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text safe inside an SVG element or attribute. */
export function escapeXml(s: string): string {
  return s.replace(NOT_XML_CHAR, '').replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A y range that can be drawn: finite, and not empty (a constant series gets ±5 %). */
function yRange(series: Envelope[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    if (s.count === 0) continue;
    if (s.minY < lo) lo = s.minY;
    if (s.maxY > hi) hi = s.maxY;
  }
  if (hi === lo) {
    const pad = Math.abs(hi) * 0.05 || 1;
    hi = Math.min(hi + pad, Number.MAX_VALUE);
    lo = Math.max(lo - pad, -Number.MAX_VALUE);
  }
  return [lo, hi];
}

function panel(y0: number, title: string, specs: Series[], data: TrainingPlotData, xLo: number, xHi: number): string {
  const envs = specs.map((s) => data.series.get(s.key)!);
  const plotW = W - M.left - M.right;
  const plotH = PANEL_H - M.top - M.bottom;
  const out: string[] = [`<g transform="translate(0,${y0})">`];
  out.push(`<text x="${M.left}" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  if (envs.every((e) => e.count === 0)) {
    out.push(`<text x="${M.left + 10}" y="${M.top + plotH / 2}" font-size="12" fill="#888">no data yet</text></g>`);
    return out.join('');
  }
  const [yLo, yHi] = yRange(envs);
  const sx = (x: number) => scale(x, xLo, xHi, M.left, M.left + plotW);
  const sy = (y: number) => scale(y, yLo, yHi, M.top + plotH, M.top);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(yLo, yHi)) {
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(xLo, xHi)) {
    out.push(`<text x="${sx(t).toFixed(1)}" y="${M.top + plotH + 16}" font-size="11" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<text x="${M.left + plotW / 2}" y="${PANEL_H - 4}" font-size="11" text-anchor="middle">step</text>`);
  specs.forEach((s, i) => {
    const env = envs[i]!;
    if (env.count === 0) return;
    const points = env.points();
    const d: string[] = [];
    for (let j = 0; j < points.length; j++) d.push(`${j === 0 ? 'M' : 'L'}${sx(points[j]![0]).toFixed(1)},${sy(points[j]![1]).toFixed(1)}`);
    out.push(`<path d="${d.join(' ')}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    if (env.count <= MARKERS_UP_TO)
      for (const [x, y] of points) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2" fill="${s.color}"/>`);
    const lx = M.left + plotW - 150;
    const ly = M.top + 14 + i * 16;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 24}" y="${ly}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  return out.join('');
}

/** Renders gathered plot data (see TrainingPlotData). */
export function renderPlotData(data: TrainingPlotData, opts: { title?: string; maxSteps?: number } = {}): string {
  // the x axis: from 0 (or a negative step, should one be logged) to max_steps or the last step logged
  const xLo = Math.min(0, data.minStep);
  let xHi = Math.max(1, opts.maxSteps ?? 0, data.maxStep);
  if (!(xHi > xLo)) xHi = xLo + 1;
  const height = 2 * PANEL_H + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" font-size="15" text-anchor="middle">${escapeXml(opts.title ?? 'training')}</text>`,
    panel(24, 'loss', LOSS_SERIES, data, xLo, xHi),
    panel(24 + PANEL_H, 'learning rate', LR_SERIES, data, xLo, xHi),
    '</svg>\n',
  ].join('\n');
}

/** Renders the loss / eval-loss / learning-rate chart of a log history. */
export function renderTrainingPlot(history: Iterable<LogEntry>, opts: { title?: string; maxSteps?: number } = {}): string {
  const data = new TrainingPlotData();
  for (const e of history) data.add(e);
  return renderPlotData(data, opts);
}
