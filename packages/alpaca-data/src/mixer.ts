/**
 * The seeded mixer: per-source target counts, cleaning, exact and near-duplicate removal across all
 * sources, sampling with or without replacement, and a report whose numbers add up.
 *
 * Two streamed passes per source keep memory bounded by the number of records (an index per kept
 * record, a 64-bit hash per duplicate key), not their size:
 *   pass 1  read → validate → clean → dedupe (first occurrence wins, sources in the order given)
 *           → the indices of the kept records ("pool");
 *   sample  a per-source RNG seeded from (seed, source name) picks `count` pool entries;
 *   pass 2  read again and emit the picked records.
 * The output is then shuffled with its own seeded RNG (held in memory as JSON lines), or written in
 * source/file order with `shuffle: false` (streamed). Same inputs + same seed → same bytes.
 */
import { AtomicFileWriter, Xoshiro128 } from '@cllama/core';
import { cleaningReason, codePoints, exactKey, keyDigest, nearKey, type CleanOptions, type DropReason } from './clean.js';
import { AlpacaDataError, RecordError, UsageError } from './errors.js';
import { checkOutput } from './outputs.js';
import { readJsonRecords } from './readers.js';
import { checkAlpacaRecord } from './records.js';
import type { AlpacaRecord } from './sft.js';
import { formatPrompt } from './template.js';
import type { EncodingTokenizer } from './tokenizer.js';

export interface MixSource {
  name: string;
  file: string;
  /** How many records to take from this source. */
  count: number;
}

export interface MixOptions {
  seed: number;
  /** Sample with replacement (a small source can fill a large count). Default false. */
  replacement?: boolean;
  /** Remove exact and near duplicates (default true). */
  dedupe?: boolean;
  clean?: CleanOptions;
  /** Shuffle the final mixture (default true; needs the mixture in memory). */
  shuffle?: boolean;
  strict?: boolean;
  /** With a tokenizer the length histograms are in tokens of the SFT example, else in characters. */
  tokenizer?: EncodingTokenizer;
  onError?: (e: RecordError) => void;
  /** Also write the Markdown report here: both files go to temps and are renamed last, report first. */
  report?: string;
  /** Replace an existing output / report (an output that is a source is refused always). */
  force?: boolean;
  /** A record longer than this many bytes is counted invalid without being read whole (default 8 MiB). */
  maxRecordBytes?: number;
}

export const DROP_REASONS: readonly DropReason[] = [
  'empty-instruction',
  'empty-output',
  'broken-encoding',
  'output-too-long',
  'prompt-too-long',
  'refusal',
  'duplicate-exact',
  'duplicate-near',
];

export const HISTOGRAM_EDGES = [64, 128, 256, 512, 1024];

export interface SourceStats {
  name: string;
  file: string;
  /** Items in the file, good or bad. */
  read: number;
  /** Items that were not valid JSON / UTF-8 / Alpaca records. */
  invalid: number;
  dropped: Record<DropReason, number>;
  /** Records left to sample from: read − invalid − Σ dropped. */
  pool: number;
  requested: number;
  /** Records written (counting repeats). */
  sampled: number;
  /** Distinct records among them. */
  distinct: number;
  /** requested − sampled (a source too small to fill its count without replacement). */
  shortfall: number;
  /** Length histogram of the sampled records; buckets [0,64), [64,128), … [1024,∞); sums to `sampled`. */
  histogram: number[];
  /** Mean and max length of the sampled records (same unit as the histogram). */
  meanLength: number;
  maxLength: number;
}

export interface MixReport {
  seed: number;
  replacement: boolean;
  dedupe: boolean;
  shuffle: boolean;
  unit: 'tokens' | 'characters';
  sources: SourceStats[];
  total: { read: number; invalid: number; dropped: number; pool: number; requested: number; sampled: number };
  /** The first few per-record errors (all are counted in `invalid`). */
  errors: string[];
}

/** Parse `name=file:count` (the CLI's --source). The count may use K/M suffixes. */
export function parseSourceSpec(spec: string): MixSource {
  const m = /^([^=]+)=(.+):(\d+(?:\.\d+)?)([kKmM]?)$/.exec(spec);
  if (!m) throw new UsageError(`bad --source '${spec}': expected name=file:count, e.g. pclue=pclue.jsonl:300000 or alpaca_zh=zh.json:50K`);
  const mult = m[4] === '' ? 1 : m[4].toLowerCase() === 'k' ? 1e3 : 1e6;
  const count = Math.round(Number(m[3]) * mult);
  return { name: m[1], file: m[2], count };
}

export async function mixSources(sources: MixSource[], output: string, opts: MixOptions): Promise<MixReport> {
  if (sources.length === 0) throw new UsageError('mix: give at least one --source name=file:count');
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new UsageError(`mix: source name '${s.name}' is used twice; names must be unique`);
    names.add(s.name);
    if (!Number.isInteger(s.count) || s.count < 0) throw new UsageError(`mix: source '${s.name}' count must be a non-negative integer`);
  }
  if (!Number.isSafeInteger(opts.seed)) throw new UsageError(`mix: --seed must be an integer, got ${opts.seed}`);
  for (const [flag, v] of [
    ['--max-output-chars', opts.clean?.maxOutputChars],
    ['--max-prompt-chars', opts.clean?.maxPromptChars],
  ] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new UsageError(`mix: ${flag} must be a positive integer, got ${v}`);
  }
  const inputs = sources.map((s) => s.file);
  await checkOutput(output, inputs, { force: opts.force ?? true });
  if (opts.report !== undefined) {
    await checkOutput(opts.report, [...inputs, output], { force: opts.force ?? true, flag: '--report' });
  }
  const replacement = opts.replacement ?? false;
  const dedupe = opts.dedupe ?? true;
  const shuffle = opts.shuffle ?? true;
  const errors: string[] = [];
  const seenExact = new Set<string>();
  const seenNear = new Set<string>();

  // Pass 1: pools.
  const pools: number[][] = [];
  const stats: SourceStats[] = [];
  for (const src of sources) {
    const st: SourceStats = {
      name: src.name,
      file: src.file,
      read: 0,
      invalid: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
      pool: 0,
      requested: src.count,
      sampled: 0,
      distinct: 0,
      shortfall: 0,
      histogram: new Array(HISTOGRAM_EDGES.length + 1).fill(0),
      meanLength: 0,
      maxLength: 0,
    };
    const pool: number[] = [];
    for await (const it of readJsonRecords(src.file, { maxRecordBytes: opts.maxRecordBytes })) {
      st.read++;
      let rec: AlpacaRecord | string;
      if (!it.ok) rec = it.error.problem;
      else rec = checkAlpacaRecord(it.value);
      if (typeof rec === 'string') {
        const e = it.ok ? new RecordError(src.file, it.where, rec) : it.error;
        if (opts.strict) throw e;
        st.invalid++;
        if (errors.length < 20) errors.push(e.message);
        opts.onError?.(e);
        continue;
      }
      let reason = cleaningReason(rec, opts.clean);
      if (reason === undefined && dedupe) {
        const ek = keyDigest(exactKey(rec));
        const nk = keyDigest(nearKey(rec));
        if (seenExact.has(ek)) reason = 'duplicate-exact';
        else if (seenNear.has(nk)) reason = 'duplicate-near';
        seenExact.add(ek);
        seenNear.add(nk);
      }
      if (reason !== undefined) {
        st.dropped[reason]++;
        continue;
      }
      pool.push(it.index);
    }
    st.pool = pool.length;
    pools.push(pool);
    stats.push(st);
  }

  // Sampling: for each source, file index → how many times it is taken.
  const picks: Map<number, number>[] = sources.map((src, s) => {
    const rng = Xoshiro128.fromSeed(`${opts.seed}:${src.name}`);
    const pool = pools[s];
    const taken = new Map<number, number>();
    if (replacement) {
      if (pool.length > 0) {
        for (let i = 0; i < src.count; i++) {
          const idx = pool[rng.uniformInt(pool.length)];
          taken.set(idx, (taken.get(idx) ?? 0) + 1);
        }
      }
    } else {
      for (const p of rng.sample(pool.length, src.count)) taken.set(pool[p], 1);
    }
    return taken;
  });
  pools.length = 0;

  // Pass 2: emit. Both outputs are opened first (a report path that cannot be written fails here).
  const out = await AtomicFileWriter.create(output);
  let reportOut: AtomicFileWriter | undefined;
  let report: MixReport;
  try {
    if (opts.report !== undefined) reportOut = await AtomicFileWriter.create(opts.report);
    const lines: string[] = [];
    for (let s = 0; s < sources.length; s++) {
      const st = stats[s];
      const taken = picks[s];
      let lengthSum = 0;
      if (taken.size > 0) {
        for await (const it of readJsonRecords(sources[s].file, { maxRecordBytes: opts.maxRecordBytes })) {
          const times = taken.get(it.index);
          if (times === undefined || !it.ok) continue;
          const rec = checkAlpacaRecord(it.value) as AlpacaRecord;
          const line = `${JSON.stringify({ instruction: rec.instruction, input: rec.input ?? '', output: rec.output })}\n`;
          const len = recordLength(rec, opts.tokenizer);
          st.distinct++;
          st.sampled += times;
          st.histogram[bucketOf(len)] += times;
          lengthSum += len * times;
          st.maxLength = Math.max(st.maxLength, len);
          for (let k = 0; k < times; k++) {
            if (shuffle) lines.push(line);
            else await out.write(line);
          }
        }
      }
      st.shortfall = st.requested - st.sampled;
      st.meanLength = st.sampled > 0 ? Math.round((lengthSum / st.sampled) * 10) / 10 : 0;
    }
    if (shuffle) {
      Xoshiro128.fromSeed(`${opts.seed}:shuffle`).shuffle(lines);
      for (const l of lines) await out.write(l);
    }
    report = mixReport(stats, errors, { seed: opts.seed, replacement, dedupe, shuffle, tokenizer: opts.tokenizer });
    if (report.total.sampled === 0) {
      throw new AlpacaDataError(
        `mix: no records to write (read ${report.total.read}, invalid ${report.total.invalid}, dropped ${report.total.dropped}); check the sources and the cleaning limits; nothing was written`,
      );
    }
    if (reportOut) await reportOut.write(formatMixReport(report));
    await out.prepare();
    await reportOut?.prepare();
    await reportOut?.publish();
    await out.publish();
  } catch (err) {
    await out.abort();
    await reportOut?.abort();
    throw err;
  }
  return report;
}

function mixReport(
  stats: SourceStats[],
  errors: string[],
  o: { seed: number; replacement: boolean; dedupe: boolean; shuffle: boolean; tokenizer?: EncodingTokenizer },
): MixReport {
  const { seed, replacement, dedupe, shuffle } = o;
  const sum = (f: (s: SourceStats) => number) => stats.reduce((a, s) => a + f(s), 0);
  return {
    seed,
    replacement,
    dedupe,
    shuffle,
    unit: o.tokenizer ? 'tokens' : 'characters',
    sources: stats,
    total: {
      read: sum((s) => s.read),
      invalid: sum((s) => s.invalid),
      dropped: sum((s) => Object.values(s.dropped).reduce((a, b) => a + b, 0)),
      pool: sum((s) => s.pool),
      requested: sum((s) => s.requested),
      sampled: sum((s) => s.sampled),
    },
    errors,
  };
}

/** Length of a record: tokens of its untruncated SFT example (BOS + prompt + output + EOS), or characters. */
export function recordLength(rec: AlpacaRecord, tok?: EncodingTokenizer): number {
  if (!tok) return codePoints(rec.instruction) + codePoints(rec.input ?? '') + codePoints(rec.output);
  return 2 + tok.encode(formatPrompt(rec)).length + tok.encode(rec.output).length;
}

export function bucketOf(len: number): number {
  let b = 0;
  while (b < HISTOGRAM_EDGES.length && len >= HISTOGRAM_EDGES[b]) b++;
  return b;
}

export function histogramLabels(): string[] {
  const e = HISTOGRAM_EDGES;
  return [...e.map((hi, i) => `${i === 0 ? 0 : e[i - 1]}–${hi - 1}`), `≥${e[e.length - 1]}`];
}

/** The report as Markdown: one row per source, dropped reasons, histograms, and the totals. */
export function formatMixReport(r: MixReport): string {
  const L: string[] = [];
  L.push('# Mix report', '');
  L.push(
    `seed ${r.seed}; sampling ${r.replacement ? 'with' : 'without'} replacement; duplicates ${r.dedupe ? 'removed (exact and near)' : 'kept'}; output ${r.shuffle ? 'shuffled' : 'in source order'}`,
    '',
  );
  L.push('read = invalid + dropped + pool; written = sampled', '');
  L.push('| source | file | read | invalid | dropped | pool | requested | sampled | distinct | shortfall |');
  L.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const s of r.sources) {
    const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    L.push(`| ${s.name} | ${s.file} | ${s.read} | ${s.invalid} | ${dropped} | ${s.pool} | ${s.requested} | ${s.sampled} | ${s.distinct} | ${s.shortfall} |`);
  }
  const t = r.total;
  L.push(`| **total** | | ${t.read} | ${t.invalid} | ${t.dropped} | ${t.pool} | ${t.requested} | ${t.sampled} | | ${t.requested - t.sampled} |`, '');
  L.push('## Dropped, by reason', '');
  L.push(`| source | ${DROP_REASONS.join(' | ')} |`);
  L.push(`|---|${DROP_REASONS.map(() => '--:').join('|')}|`);
  for (const s of r.sources) L.push(`| ${s.name} | ${DROP_REASONS.map((d) => s.dropped[d]).join(' | ')} |`);
  L.push('', `## Length of the sampled records (${r.unit})`, '');
  L.push(`| source | mean | max | ${histogramLabels().join(' | ')} |`);
  L.push(
    `|---|--:|--:|${histogramLabels()
      .map(() => '--:')
      .join('|')}|`,
  );
  for (const s of r.sources) L.push(`| ${s.name} | ${s.meanLength} | ${s.maxLength} | ${s.histogram.join(' | ')} |`);
  if (r.errors.length > 0) {
    L.push('', `## First invalid records (${t.invalid} in all)`, '');
    for (const e of r.errors) L.push(`- ${e.replace(/\n/g, ' ')}`);
  }
  return `${L.join('\n')}\n`;
}
