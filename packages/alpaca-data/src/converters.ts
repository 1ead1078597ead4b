/**
 * Converters from the recipe's source formats to Alpaca records {instruction, input, output}.
 * Each is a pure function of one parsed value (plus options) returning records or a problem text;
 * file reading and error reporting are the caller's (see convertFile).
 */
import { UsageError } from './errors.js';
import { checkAlpacaRecord } from './records.js';
import { Xoshiro128 } from '@cllama/core';
import type { AlpacaRecord } from './sft.js';

export type ConverterName = 'pclue' | 'translation' | 'crawler' | 'alpaca' | 'identity';
export const CONVERTERS: readonly ConverterName[] = ['pclue', 'translation', 'crawler', 'alpaca', 'identity'];

export type ConvertedRecord = AlpacaRecord & Record<string, unknown>;
/** Records made from one input value, or the reason it was unusable. */
export type ConvertResult = ConvertedRecord[] | string;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function typeOf(x: unknown): string {
  return x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x;
}
function needStrings(v: Record<string, unknown>, keys: string[]): string | undefined {
  const missing = keys.filter((k) => v[k] === undefined);
  if (missing.length > 0) return `missing field${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(' and ')}`;
  for (const k of keys) if (typeof v[k] !== 'string') return `field "${k}" must be a string, got ${typeOf(v[k])}`;
  return undefined;
}

/**
 * pCLUE ({input, target, answer_choices?, type}): the input already is a complete prompt (question,
 * choices, "答案："), so it becomes the instruction; target → output; `type` and `answer_choices`
 * are kept as extra fields.
 */
export function convertPclue(value: unknown): ConvertResult {
  if (!isObject(value)) return `expected a pCLUE object {input, target, type}, got ${typeOf(value)}`;
  const problem = needStrings(value, ['input', 'target']);
  if (problem) return problem;
  const rec: ConvertedRecord = { instruction: value.input as string, input: '', output: value.target as string };
  if (typeof value.type === 'string') rec.type = value.type;
  if (Array.isArray(value.answer_choices)) rec.answer_choices = value.answer_choices;
  return [rec];
}

/** Instructions for the two translation directions; one is picked per pair by the seeded RNG. */
export const TRANSLATION_INSTRUCTIONS = {
  en2zh: [
    '将下面的英文翻译成中文。',
    '请把以下英文句子翻译成中文：',
    '把这段英文翻译成中文。',
    '翻译成中文：',
    '请将下列内容译为中文。',
    'Translate the following English text into Chinese.',
    'Translate this sentence into Chinese.',
    '英译中：',
  ],
  zh2en: [
    '将下面的中文翻译成英文。',
    '请把以下中文句子翻译成英文：',
    '把这段中文翻译成英文。',
    '翻译成英文：',
    '请将下列内容译为英文。',
    'Translate the following Chinese text into English.',
    'Translate this sentence into English.',
    '中译英：',
  ],
} as const;

export type TranslationDirection = 'en2zh' | 'zh2en' | 'both';

/**
 * translation2019zh-style pairs ({english, chinese}) → one record per direction, the sentence to
 * translate as input, the instruction drawn from a varied list.
 */
export function convertTranslation(value: unknown, rng: Xoshiro128, direction: TranslationDirection = 'both'): ConvertResult {
  if (!isObject(value)) return `expected a translation pair {english, chinese}, got ${typeOf(value)}`;
  const problem = needStrings(value, ['english', 'chinese']);
  if (problem) return problem;
  const en = (value.english as string).trim();
  const zh = (value.chinese as string).trim();
  if (en === '' || zh === '') return `empty ${en === '' ? '"english"' : '"chinese"'} text`;
  const out: ConvertedRecord[] = [];
  const pick = (list: readonly string[]) => list[rng.uniformInt(list.length)];
  if (direction !== 'zh2en') out.push({ instruction: pick(TRANSLATION_INSTRUCTIONS.en2zh), input: en, output: zh });
  if (direction !== 'en2zh') out.push({ instruction: pick(TRANSLATION_INSTRUCTIONS.zh2en), input: zh, output: en });
  return out;
}

/** What crawled replies put in `input` when there is none (after lower-casing and trimming). */
const NO_INPUT = new Set([
  '',
  '<noinput>',
  '<no input>',
  'noinput',
  'no input',
  'none',
  'n/a',
  'na',
  'null',
  '无',
  '无输入',
  '<无输入>',
  '空',
  '（无）',
  '(无)',
  '无需输入',
  '不需要输入',
]);

/**
 * The crawler's JSON-lines output ({instruction, input, output}, also the Chinese key names 指令/输入/输出
 * that replies use): text trimmed, placeholder inputs ("<noinput>", "无输入", …) emptied.
 */
export function convertCrawler(value: unknown): ConvertResult {
  if (!isObject(value)) return `expected a crawled item {instruction, input, output}, got ${typeOf(value)}`;
  const v: Record<string, unknown> = { ...value };
  for (const [zh, en] of [
    ['指令', 'instruction'],
    ['输入', 'input'],
    ['输出', 'output'],
  ] as const) {
    if (v[en] === undefined && v[zh] !== undefined) v[en] = v[zh];
  }
  const problem = needStrings(v, ['instruction', 'output']);
  if (problem) return problem;
  if (v.input !== undefined && v.input !== null && typeof v.input !== 'string') return `field "input" must be a string, got ${typeOf(v.input)}`;
  const input = typeof v.input === 'string' ? v.input.trim() : '';
  return [
    {
      instruction: (v.instruction as string).trim(),
      input: NO_INPUT.has(input.toLowerCase()) ? '' : input,
      output: (v.output as string).trim(),
    },
  ];
}

/** Alpaca records as they are (validated; `input` null/absent → ""). */
export function convertAlpaca(value: unknown): ConvertResult {
  const r = checkAlpacaRecord(value);
  return typeof r === 'string' ? r : [r as ConvertedRecord];
}

/**
 * Identity data (LLaMA-Factory's identity.json): `{{name}}`-style placeholders in any field are filled
 * from `values`; a placeholder without a value is an error, so nothing ships with "{{name}}" in it.
 */
export function convertIdentity(value: unknown, values: Record<string, string>): ConvertResult {
  const r = checkAlpacaRecord(value);
  if (typeof r === 'string') return r;
  const fill = (text: string): string | { missing: string } => {
    let missing: string | undefined;
    const out = text.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, key: string) => {
      if (values[key] === undefined) {
        missing ??= key;
        return m;
      }
      return values[key];
    });
    return missing === undefined ? out : { missing };
  };
  const rec: ConvertedRecord = { instruction: '', input: '', output: '' };
  for (const k of ['instruction', 'input', 'output'] as const) {
    const f = fill(r[k] ?? '');
    if (typeof f !== 'string') return `placeholder {{${f.missing}}} has no value; pass --set ${f.missing}=...`;
    rec[k] = f;
  }
  return [rec];
}

export interface ConvertOptions {
  seed?: number;
  direction?: TranslationDirection;
  /** Placeholder values for identity data (name, author, …). */
  values?: Record<string, string>;
}

/** A converter function for a format name, with its state (the RNG) bound. */
export function makeConverter(from: ConverterName | string, opts: ConvertOptions = {}): (value: unknown) => ConvertResult {
  switch (from) {
    case 'pclue':
      return convertPclue;
    case 'translation': {
      const rng = Xoshiro128.fromSeed(opts.seed ?? 0);
      return (v) => convertTranslation(v, rng, opts.direction ?? 'both');
    }
    case 'crawler':
      return convertCrawler;
    case 'alpaca':
      return convertAlpaca;
    case 'identity':
      return (v) => convertIdentity(v, opts.values ?? {});
    default:
      throw new UsageError(`unknown format '${from}': use one of ${CONVERTERS.join(', ')}`);
  }
}
