/** `cllama-data convert`: a source file in, an Alpaca JSON-lines file out (atomic). */
import { AtomicFileWriter } from '@cllama/core';
import { AlpacaDataError, RecordError } from './errors.js';
import { checkOutput } from './outputs.js';
import { makeConverter, type ConverterName, type ConvertOptions } from './converters.js';
import { readJsonRecords } from './readers.js';

export interface ConvertFileOptions extends ConvertOptions {
  /** A record longer than this many bytes is skipped unread (default 8 MiB). */
  maxRecordBytes?: number;
  strict?: boolean;
  /** replace an existing output (an output that is the input is refused always) */
  force?: boolean;
  onError?: (e: RecordError) => void;
}

export interface ConvertSummary {
  /** Input values read (including unusable ones). */
  read: number;
  /** Records written (translation writes two per pair). */
  written: number;
  /** Input values skipped, with the first few errors. */
  skipped: number;
  errors: RecordError[];
}

export async function convertFile(from: ConverterName | string, input: string, output: string, opts: ConvertFileOptions = {}): Promise<ConvertSummary> {
  const convert = makeConverter(from, opts);
  await checkOutput(output, [input], { force: opts.force ?? true });
  const out = await AtomicFileWriter.create(output);
  const summary: ConvertSummary = { read: 0, written: 0, skipped: 0, errors: [] };
  const report = (e: RecordError) => {
    if (opts.strict) throw e;
    summary.skipped++;
    if (summary.errors.length < 20) summary.errors.push(e);
    opts.onError?.(e);
  };
  try {
    for await (const item of readJsonRecords(input, { maxRecordBytes: opts.maxRecordBytes })) {
      summary.read++;
      if (!item.ok) {
        report(item.error);
        continue;
      }
      const r = convert(item.value);
      if (typeof r === 'string') {
        report(new RecordError(input, item.where, r));
        continue;
      }
      for (const rec of r) {
        await out.write(`${JSON.stringify(rec)}\n`);
        summary.written++;
      }
    }
    if (summary.written === 0) {
      throw new AlpacaDataError(
        `${input}: no usable records (${summary.read} read, ${summary.skipped} skipped${summary.errors[0] ? `; first: ${summary.errors[0].problem}` : ''}); nothing was written`,
      );
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return summary;
}
