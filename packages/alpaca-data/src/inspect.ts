/** `cllama-data dump` and `cllama-data stats`: looking at tokenized datasets and Alpaca files. */
import { cleaningReason, codePoints, exactKey, keyDigest, nearKey } from './clean.js';
import { RecordError } from './errors.js';
import { bucketOf, histogramLabels, recordLength } from './mixer.js';
import type { ReaderOptions } from './readers.js';
import { readAlpacaRecords } from './records.js';
import { IGNORE_INDEX } from './sft.js';
import type { TokenizedDataset } from './tokenized-dataset.js';
import type { EncodingTokenizer } from './tokenizer.js';

export interface DecodingTokenizer extends EncodingTokenizer {
  decode(ids: readonly number[]): string;
  idToPiece(id: number): string;
}

/** One record as a JSON line: {"input_ids": [...], "labels": [...]} (the names build_dataset.py uses). */
export function dumpJsonLine(ds: TokenizedDataset, i: number): string {
  const r = ds.get(i);
  return JSON.stringify({ input_ids: Array.from(r.inputIds), labels: Array.from(r.labels) });
}

/**
 * One record as text: the masked (not trained) part between ⟦ and ⟧, specials as their pieces.
 * Without a tokenizer the ids are printed, masked ones inside ⟦ ⟧.
 */
export function dumpText(ds: TokenizedDataset, i: number, tok?: DecodingTokenizer): string {
  const r = ds.get(i);
  const trained = r.labels.reduce((a, l) => a + (l === IGNORE_INDEX ? 0 : 1), 0);
  const head = `#${i}  ${r.inputIds.length} tokens, ${trained} trained`;
  const segments: { masked: boolean; ids: number[] }[] = [];
  r.inputIds.forEach((id, k) => {
    const masked = r.labels[k] === IGNORE_INDEX;
    const last = segments[segments.length - 1];
    if (last && last.masked === masked) last.ids.push(id);
    else segments.push({ masked, ids: [id] });
  });
  const render = (ids: number[]): string => {
    if (!tok) return ids.join(' ');
    const specials = new Set([tok.bosId, tok.eosId, ...(tok.padId !== undefined ? [tok.padId] : [])]);
    let out = '';
    let run: number[] = [];
    const flush = () => {
      if (run.length === 0) return;
      // SentencePiece decoding drops the leading "▁" of a run; keep it visible as a space.
      const lead = tok.idToPiece(run[0]).startsWith('▁') && out !== '' ? ' ' : '';
      out += lead + tok.decode(run);
      run = [];
    };
    for (const id of ids) {
      if (specials.has(id)) {
        flush();
        out += tok.idToPiece(id);
      } else run.push(id);
    }
    flush();
    return out;
  };
  const body = segments.map((s) => (s.masked ? `⟦${render(s.ids)}⟧` : render(s.ids))).join(tok ? '' : ' ');
  return `${head}\n${body}\n`;
}

export interface DatasetStats {
  kind: string;
  count: number;
  numTokens: number;
  trainedTokens: number;
  minLength: number;
  maxLength: number;
  meanLength: number;
  histogram: { bucket: string; count: number }[];
}

export function tokenizedStats(ds: TokenizedDataset): DatasetStats {
  const hist = new Array(histogramLabels().length).fill(0);
  let trained = 0;
  for (let i = 0; i < ds.length; i++) {
    const n = ds.lengthOf(i);
    hist[bucketOf(n)]++;
    if (ds.meta.hasLabels) trained += ds.get(i).labels.reduce((a, l) => a + (l === IGNORE_INDEX ? 0 : 1), 0);
    else trained += n;
  }
  return {
    kind: String(ds.meta.info.kind ?? 'unknown'),
    count: ds.length,
    numTokens: ds.meta.numTokens,
    trainedTokens: trained,
    minLength: ds.meta.minLength,
    maxLength: ds.meta.maxLength,
    meanLength: ds.length ? Math.round((ds.meta.numTokens / ds.length) * 10) / 10 : 0,
    histogram: histogramLabels().map((bucket, k) => ({ bucket, count: hist[k] })),
  };
}

export interface AlpacaFileStats {
  records: number;
  invalid: number;
  withInput: number;
  duplicatesExact: number;
  duplicatesNear: number;
  /** Records the mixer's cleaning rules would drop, by reason. */
  wouldDrop: Record<string, number>;
  chars: { instruction: Summary; input: Summary; output: Summary };
  unit: 'tokens' | 'characters';
  /** Length of the whole example (tokens of the untruncated SFT example, or characters). */
  length: Summary;
  histogram: { bucket: string; count: number }[];
  errors: string[];
}

export interface Summary {
  mean: number;
  p50: number;
  p90: number;
  max: number;
}

function summarize(values: number[]): Summary {
  if (values.length === 0) return { mean: 0, p50: 0, p90: 0, max: 0 };
  const s = Float64Array.from(values).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { mean: Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 10) / 10, p50: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}

/**
 * Statistics of an Alpaca file, streamed: memory grows with the number of records (a few numbers and
 * two key digests each), not their size; a record over `maxRecordBytes` counts as invalid unread.
 */
export async function alpacaFileStats(file: string, tok?: EncodingTokenizer, opts: ReaderOptions = {}): Promise<AlpacaFileStats> {
  const errors: string[] = [];
  let invalid = 0;
  const lens = { instruction: [] as number[], input: [] as number[], output: [] as number[] };
  const total: number[] = [];
  const hist = new Array(histogramLabels().length).fill(0);
  const exact = new Set<string>();
  const near = new Set<string>();
  const wouldDrop: Record<string, number> = {};
  let withInput = 0;
  let dupE = 0;
  let dupN = 0;
  const onError = (e: RecordError) => {
    invalid++;
    if (errors.length < 10) errors.push(e.message);
  };
  for await (const { record } of readAlpacaRecords(file, { onError, maxRecordBytes: opts.maxRecordBytes })) {
    lens.instruction.push(codePoints(record.instruction));
    lens.input.push(codePoints(record.input ?? ''));
    lens.output.push(codePoints(record.output));
    if (record.input) withInput++;
    const ek = keyDigest(exactKey(record));
    const nk = keyDigest(nearKey(record));
    if (exact.has(ek)) dupE++;
    else if (near.has(nk)) dupN++;
    exact.add(ek);
    near.add(nk);
    const reason = cleaningReason(record);
    if (reason) wouldDrop[reason] = (wouldDrop[reason] ?? 0) + 1;
    const len = recordLength(record, tok);
    total.push(len);
    hist[bucketOf(len)]++;
  }
  return {
    records: total.length,
    invalid,
    withInput,
    duplicatesExact: dupE,
    duplicatesNear: dupN,
    wouldDrop,
    chars: { instruction: summarize(lens.instruction), input: summarize(lens.input), output: summarize(lens.output) },
    unit: tok ? 'tokens' : 'characters',
    length: summarize(total),
    histogram: histogramLabels().map((bucket, k) => ({ bucket, count: hist[k] })),
    errors,
  };
}
