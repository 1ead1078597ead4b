/** `cllama-data convert`: a source file (Alpaca, pCLUE, translation, …) to Alpaca JSON lines. */
import { defineCommand, integerFlag, UsageError } from '@cllama/core';
import { convertFile } from '../convert-file.js';
import { CONVERTERS, type ConverterName, type TranslationDirection } from '../converters.js';
import { maxRecordBytes, RECORD_FLAGS, warner } from './common.js';

interface ConvertFlags {
  input: string;
  from: ConverterName;
  out: string;
  force?: boolean;
  seed: number;
  direction: TranslationDirection;
  set?: string[];
  maxRecordBytes: number;
  strict?: boolean;
  quiet?: boolean;
}

/** --set key=value pairs as a record. */
function placeholderValues(pairs: string[] = []): Record<string, string> {
  const values: Record<string, string> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set expects key=value, got '${kv}'`);
    values[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return values;
}

export const convertCommand = defineCommand<ConvertFlags>({
  meta: {
    name: 'convert',
    description: 'convert a source file to Alpaca JSON lines {instruction, input, output}',
    example: 'cllama-data convert pCLUE_train.json --from pclue --out pclue.jsonl',
  },
  args: {
    input: { type: 'positional', description: 'input file (JSON array or JSON lines)' },
    from: { type: 'string', valueHint: 'format', description: 'input format', choices: CONVERTERS, required: true },
    out: { type: 'string', valueHint: 'file', description: 'output .jsonl (written atomically)', required: true },
    force: { type: 'boolean', description: 'replace an existing --out (never the input itself)' },
    seed: { type: 'string', valueHint: 'n', description: 'seed for the varied translation instructions', parse: integerFlag('--seed'), default: 0 },
    direction: { type: 'string', valueHint: 'd', description: 'translation direction', choices: ['both', 'en2zh', 'zh2en'], default: 'both' },
    set: { type: 'string', valueHint: 'key=value', description: 'identity placeholder value, e.g. --set name=小羊驼 (repeatable)', repeatable: true },
    'max-record-bytes': maxRecordBytes(),
    ...RECORD_FLAGS,
  },
  run: async ({ args: o }) => {
    const values = placeholderValues(o.set);
    const w = warner(!!o.quiet);
    const s = await convertFile(o.from, o.input, o.out, {
      seed: o.seed,
      direction: o.direction,
      values,
      strict: o.strict,
      force: !!o.force,
      maxRecordBytes: o.maxRecordBytes,
      onError: w.warn,
    });
    w.summary('records');
    console.log(`read ${s.read}, wrote ${s.written} records to ${o.out}, skipped ${s.skipped}`);
  },
});
