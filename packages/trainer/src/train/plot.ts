/**
 * The training plot: training loss and eval loss against the optimizer step (top panel) and the
 * learning rate (bottom panel), as a self-contained SVG. Hand-written (a few line charts do not need a
 * charting library, and the candidates need a DOM or a canvas in Node).
 */
import type { LogEntry } from './checkpoint.js';

interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

const W = 720;
const PANEL_H = 220;
const M = { left: 70, right: 20, top: 30, bottom: 36 };

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-2 ? v.toExponential(1) : +v.toPrecision(3) + '';
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

function panel(y0: number, title: string, series: Series[], xMax: number): string {
  const pts = series.flatMap((s) => s.points);
  const plotW = W - M.left - M.right;
  const plotH = PANEL_H - M.top - M.bottom;
  const out: string[] = [`<g transform="translate(0,${y0})">`];
  out.push(`<text x="${M.left}" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  if (pts.length === 0) {
    out.push(`<text x="${M.left + 10}" y="${M.top + plotH / 2}" font-size="12" fill="#888">no data yet</text></g>`);
    return out.join('');
  }
  let yLo = Math.min(...pts.map((p) => p[1]));
  let yHi = Math.max(...pts.map((p) => p[1]));
  if (yHi === yLo) {
    yHi += Math.abs(yHi) * 0.05 || 1;
    yLo -= Math.abs(yLo) * 0.05 || 0;
  }
  const xHi = Math.max(1, xMax);
  const sx = (x: number) => M.left + (x / xHi) * plotW;
  const sy = (y: number) => M.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(yLo, yHi)) {
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(0, xHi)) {
    out.push(`<text x="${sx(t).toFixed(1)}" y="${M.top + plotH + 16}" font-size="11" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<text x="${M.left + plotW / 2}" y="${PANEL_H - 4}" font-size="11" text-anchor="middle">step</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    for (const [x, y] of s.points.length <= 60 ? s.points : []) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2" fill="${s.color}"/>`);
    const lx = M.left + plotW - 150;
    const ly = M.top + 14 + i * 16;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 24}" y="${ly}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  return out.join('');
}

/** Renders the loss / eval-loss / learning-rate chart of a log history. */
export function renderTrainingPlot(history: readonly LogEntry[], opts: { title?: string; maxSteps?: number } = {}): string {
  const pick = (key: string) => history.filter((e) => typeof e[key] === 'number' && Number.isFinite(e[key])).map((e) => [e.step, e[key]!] as [number, number]);
  const xMax = Math.max(opts.maxSteps ?? 0, ...history.map((e) => e.step));
  const height = 2 * PANEL_H + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" font-size="15" text-anchor="middle">${escapeXml(opts.title ?? 'training')}</text>`,
    panel(
      24,
      'loss',
      [
        { label: 'train loss', color: '#1f77b4', points: pick('loss') },
        { label: 'eval loss', color: '#d62728', points: pick('eval_loss'), dashed: true },
      ],
      xMax,
    ),
    panel(24 + PANEL_H, 'learning rate', [{ label: 'lr', color: '#2ca02c', points: pick('learning_rate') }], xMax),
    '</svg>\n',
  ].join('\n');
}
