/**
 * cllama-data: convert / mix / tokenize / dump / stats. Errors print one line and exit 1; usage
 * errors exit 2 (@cllama/core's runMain); per-record problems are warnings unless --strict.
 */
import { Command, Option } from 'commander';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { parseWholeNumber, runMain } from '@cllama/core';
import { convertFile } from './convert-file.js';
import { CONVERTERS, type TranslationDirection } from './converters.js';
import { type RecordError, UsageError } from './errors.js';
import { alpacaFileStats, dumpJsonLine, dumpText, tokenizedStats, type DecodingTokenizer } from './inspect.js';
import { formatMixReport, mixSources, parseSourceSpec } from './mixer.js';
import { checkOutput } from './outputs.js';
import { openTokenizedDataset } from './tokenized-dataset.js';
import { tokenizeFiles } from './tokenize-files.js';
import { DEFAULT_MAX_RECORD_BYTES } from './readers.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

const MAX_WARNINGS = 5;

/** Per-record warnings: the first few on stderr, then a count. */
function warner(quiet: boolean) {
  let n = 0;
  return {
    warn(e: RecordError) {
      n++;
      if (!quiet && n <= MAX_WARNINGS) process.stderr.write(`warning: ${e.message}\n`);
    },
    summary(what: string) {
      if (n > MAX_WARNINGS && !quiet) process.stderr.write(`warning: ${n - MAX_WARNINGS} more skipped ${what} not shown\n`);
      return n;
    },
  };
}

/** A whole number written as digits (not 1e3, 0x10, '' or 1e99), at least `min`. */
function int(name: string, min = Number.MIN_SAFE_INTEGER) {
  return (v: string): number => {
    const n = parseWholeNumber(v);
    if (Number.isNaN(n)) throw new UsageError(`${name} must be an integer, got '${v}'`);
    if (n < min) throw new UsageError(`${name} must be at least ${min}, got ${n}`);
    return n;
  };
}

/** A byte count: digits with an optional K, M or G (powers of 1024; "8M", "512KiB"), at least 1. */
function byteCount(name: string) {
  return (v: string): number => {
    const m = /^(\d+)\s*(?:([kmg])(?:i?b)?)?$/i.exec(v.trim());
    const n = m ? parseWholeNumber(m[1]) * 1024 ** ' kmg'.indexOf((m[2] ?? ' ').toLowerCase()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} must be a positive number of bytes such as 8M or 65536, got '${v}'`);
    return n;
  };
}

/** --max-record-bytes: the readers' per-record limit (what bounds their memory). */
function maxRecordBytes(help = 'skip (with a warning) a record or line longer than this, without reading it whole (K/M/G suffixes)'): Option {
  return new Option('--max-record-bytes <n>', help).argParser(byteCount('--max-record-bytes')).default(DEFAULT_MAX_RECORD_BYTES, '8M');
}

function collectRepeat(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function makeProgram(): Command {
  const program = new Command('cllama-data').description(
    'Alpaca-format instruction data and pre-training data: converters, mixer, tokenized cache (docs/alpaca-data.md)',
  );

  program
    .command('convert')
    .description('convert a source file to Alpaca JSON lines {instruction, input, output}')
    .argument('<input>', 'input file (JSON array or JSON lines)')
    .addOption(new Option('--from <format>', 'input format').choices([...CONVERTERS]).makeOptionMandatory())
    .requiredOption('--out <file>', 'output .jsonl (written atomically)')
    .option('--force', 'replace an existing --out (never the input itself)')
    .option('--seed <n>', 'seed for the varied translation instructions', int('--seed'), 0)
    .addOption(new Option('--direction <d>', 'translation direction').choices(['both', 'en2zh', 'zh2en']).default('both'))
    .option('--set <key=value>', 'identity placeholder value, e.g. --set name=小羊驼 (repeatable)', collectRepeat)
    .addOption(maxRecordBytes())
    .option('--strict', 'stop at the first bad record')
    .option('--quiet', 'no warnings')
    .action(async (input: string, o) => {
      const values: Record<string, string> = {};
      for (const kv of (o.set as string[] | undefined) ?? []) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new UsageError(`--set expects key=value, got '${kv}'`);
        values[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const w = warner(o.quiet);
      const s = await convertFile(o.from, input, o.out, {
        seed: o.seed,
        direction: o.direction as TranslationDirection,
        values,
        strict: o.strict,
        force: !!o.force,
        maxRecordBytes: o.maxRecordBytes,
        onError: w.warn,
      });
      w.summary('records');
      console.log(`read ${s.read}, wrote ${s.written} records to ${o.out}, skipped ${s.skipped}`);
    });

  program
    .command('mix')
    .description('mix sources with per-source counts, cleaning and de-duplication, reproducibly from a seed')
    .requiredOption('--source <name=file:count>', 'a source and how many records to take (repeatable; K/M suffixes)', collectRepeat)
    .requiredOption('--seed <n>', 'random seed', int('--seed'))
    .requiredOption('--out <file>', 'output .jsonl (written atomically)')
    .option('--report <file>', 'write the Markdown report here (and print it otherwise)')
    .option('--force', 'replace an existing --out / --report (never a source)')
    .option('--replacement', 'sample with replacement (fill counts larger than a source)')
    .option('--no-dedupe', 'keep exact and near duplicates')
    .option('--no-shuffle', 'write in source order (streamed) instead of shuffled (in memory)')
    .option('--no-drop-refusals', 'keep "As an AI language model…" outputs')
    .option('--max-output-chars <n>', 'drop outputs longer than this', int('--max-output-chars', 1), 4096)
    .option('--max-prompt-chars <n>', 'drop instruction + input longer than this', int('--max-prompt-chars', 1), 4096)
    .option('--tokenizer <path>', 'measure lengths in tokens of the SFT example (a .model or an HF folder)')
    .addOption(maxRecordBytes())
    .option('--strict', 'stop at the first bad record')
    .option('--quiet', 'no warnings')
    .action(async (o) => {
      const sources = (o.source as string[]).map(parseSourceSpec);
      // before the tokenizer is loaded: refused outputs cost nothing
      await checkOutput(
        o.out,
        sources.map((s) => s.file),
        { force: !!o.force },
      );
      if (o.report) await checkOutput(o.report, [...sources.map((s) => s.file), o.out], { force: !!o.force, flag: '--report' });
      const tokenizer = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
      const w = warner(o.quiet);
      const report = await mixSources(sources, o.out, {
        seed: o.seed,
        replacement: o.replacement,
        dedupe: o.dedupe,
        shuffle: o.shuffle,
        strict: o.strict,
        tokenizer,
        clean: { maxOutputChars: o.maxOutputChars, maxPromptChars: o.maxPromptChars, dropRefusals: o.dropRefusals },
        onError: w.warn,
        report: o.report,
        force: !!o.force,
        maxRecordBytes: o.maxRecordBytes,
      });
      w.summary('records');
      if (!o.report) await write(formatMixReport(report));
      console.error(`wrote ${report.total.sampled} records to ${o.out}${o.report ? `, report ${o.report}` : ''}`);
    });

  program
    .command('tokenize')
    .description('tokenize Alpaca files (sft) or text files (pt) into a tokenized dataset folder')
    .addOption(new Option('--kind <kind>', 'sft: instruction examples; pt: pre-training blocks').choices(['sft', 'pt']).makeOptionMandatory())
    .requiredOption('--tokenizer <path>', 'tokenizer: a .model file or an HF folder with tokenizer.model')
    .requiredOption('--input <file...>', 'input files (sft: JSON/JSONL Alpaca; pt: .txt lines or .jsonl {"text"})')
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .option('--force', 'replace an existing tokenized dataset at --out')
    .option('--max-seq-length <n>', 'sft: truncate examples to this many tokens', int('--max-seq-length', 1), 512)
    .option('--block-size <n>', 'pt: tokens per block', int('--block-size', 1), 512)
    .option('--template <name|text>', 'sft prompt: chinese-alpaca (default), stanford-alpaca, or a text with {instruction}')
    .addOption(maxRecordBytes())
    .option('--strict', 'stop at the first bad record')
    .option('--quiet', 'no warnings or progress')
    .action(async (o) => {
      await checkOutput(o.out, [...(o.input as string[]), o.tokenizer], { force: !!o.force, folder: true });
      const tokenizer = await loadTokenizer(o.tokenizer);
      const w = warner(o.quiet);
      const t0 = performance.now();
      const tty = process.stderr.isTTY && !o.quiet;
      const s = await tokenizeFiles({
        kind: o.kind,
        inputs: o.input,
        out: o.out,
        tokenizer,
        tokenizerPath: o.tokenizer,
        maxSeqLength: o.maxSeqLength,
        blockSize: o.blockSize,
        template: o.template,
        strict: o.strict,
        maxRecordBytes: o.maxRecordBytes,
        onError: w.warn,
        onProgress: tty
          ? (chars, n) => process.stderr.write(`\r${n} ${o.kind === 'sft' ? 'records' : 'lines'}, ${(chars / 1e6).toFixed(1)} M chars`)
          : undefined,
      });
      if (tty) process.stderr.write('\n');
      w.summary(o.kind === 'sft' ? 'records' : 'lines');
      const sec = (performance.now() - t0) / 1000;
      console.log(
        `${s.meta.count} ${o.kind === 'sft' ? 'examples' : `blocks of ${o.blockSize}`} (${s.meta.numTokens} tokens) from ${s.read} ${o.kind === 'sft' ? 'records' : 'lines'} in ${sec.toFixed(1)} s` +
          ` (${(s.chars / sec / 1e6).toFixed(2)} M chars/s)${s.truncated ? `, ${s.truncated} truncated to ${o.maxSeqLength}` : ''}${s.skipped ? `, ${s.skipped} skipped` : ''} → ${o.out}`,
      );
    });

  program
    .command('dump')
    .description('print records of a tokenized dataset: text with the masked part in ⟦ ⟧, or --jsonl {input_ids, labels}')
    .argument('<dir>', 'tokenized dataset folder')
    .option('--jsonl', 'one {"input_ids": [...], "labels": [...]} per line')
    .option('--n <k>', 'how many records (default all with --jsonl, 5 otherwise)', int('--n', 0))
    .option('--start <i>', 'first record', int('--start', 0), 0)
    .option('--tokenizer <path>', 'tokenizer for the text view (default: the one recorded in meta.json, if present)')
    .action(async (dir: string, o) => {
      const ds = await openTokenizedDataset(dir);
      try {
        if (o.start < 0 || (o.start >= ds.length && ds.length > 0)) throw new UsageError(`--start ${o.start} is outside 0..${ds.length - 1}`);
        const end = Math.min(ds.length, o.start + (o.n ?? (o.jsonl ? ds.length : 5)));
        let tok: DecodingTokenizer | undefined;
        if (!o.jsonl) {
          const tokPath = o.tokenizer ?? (typeof ds.meta.info.tokenizer === 'string' ? path.resolve(ds.meta.info.tokenizer) : undefined);
          if (tokPath) {
            const exists = await fsp.stat(tokPath).then(
              () => true,
              () => false,
            );
            if (exists) tok = (await loadTokenizer(tokPath)) as DecodingTokenizer;
            else if (o.tokenizer) throw new UsageError(`--tokenizer ${tokPath} not found`);
          }
        }
        const chunks: string[] = [];
        for (let i = o.start; i < end; i++) {
          chunks.push(o.jsonl ? `${dumpJsonLine(ds, i)}\n` : dumpText(ds, i, tok));
          if (chunks.length >= 256) {
            await write(chunks.join(''));
            chunks.length = 0;
          }
        }
        await write(chunks.join(''));
      } finally {
        ds.close();
      }
    });

  program
    .command('stats')
    .description('statistics of an Alpaca file (JSON/JSONL) or a tokenized dataset folder')
    .argument('<path>', 'file or folder')
    .option('--tokenizer <path>', 'lengths in tokens (Alpaca files)')
    .addOption(maxRecordBytes('Alpaca files: count a record longer than this as invalid, without reading it whole (K/M/G suffixes)'))
    .option('--json', 'print JSON instead of text')
    .action(async (p: string, o) => {
      const st = await fsp.stat(p).catch(() => {
        throw new UsageError(`${p} not found`);
      });
      if (st.isDirectory()) {
        const ds = await openTokenizedDataset(p);
        try {
          const s = tokenizedStats(ds);
          if (o.json) console.log(JSON.stringify(s, null, 2));
          else {
            console.log(
              `${p}: ${s.kind} dataset, ${s.count} records, ${s.numTokens} tokens (${s.trainedTokens} trained), length min ${s.minLength} / mean ${s.meanLength} / max ${s.maxLength}`,
            );
            for (const h of s.histogram) console.log(`  ${h.bucket.padStart(10)} tokens: ${h.count}`);
          }
        } finally {
          ds.close();
        }
        return;
      }
      const tok = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
      const s = await alpacaFileStats(p, tok, { maxRecordBytes: o.maxRecordBytes });
      if (o.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      console.log(
        `${p}: ${s.records} records (${s.withInput} with input), ${s.invalid} invalid, ${s.duplicatesExact} exact + ${s.duplicatesNear} near duplicates`,
      );
      for (const k of ['instruction', 'input', 'output'] as const) {
        const c = s.chars[k];
        console.log(`  ${k.padEnd(11)} chars: mean ${c.mean}, p50 ${c.p50}, p90 ${c.p90}, max ${c.max}`);
      }
      console.log(`  example ${s.unit}: mean ${s.length.mean}, p50 ${s.length.p50}, p90 ${s.length.p90}, max ${s.length.max}`);
      for (const h of s.histogram) console.log(`  ${h.bucket.padStart(10)} ${s.unit}: ${h.count}`);
      const drops = Object.entries(s.wouldDrop);
      console.log(`  cleaning would drop: ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
      for (const e of s.errors) console.log(`  invalid: ${e}`);
    });

  return program;
}

function write(s: string): Promise<void> {
  if (s === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdout.write(s, (err) => (err ? reject(err) : resolve()));
  });
}

void runMain(makeProgram);
