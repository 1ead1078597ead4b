/**
 * Turns a model's free-text reply into {instruction, input, output} items. Models wrap JSON in code
 * fences and prose, emit one object per line instead of an array, leave trailing commas, use Chinese
 * quotes and colons as JSON punctuation, name keys "<input>" or "指令", put placeholders in `input`,
 * and get cut off mid-item when finish_reason=length. Strategy: find every top-level {...} span with a
 * string-aware brace scanner (so prose, fences and numbering around objects are ignored), parse each
 * span on its own (plain JSON → punctuation fixes → jsonrepair), unwrap {"items": [...]} style
 * wrappers, and map key variants. A reply with no JSON object at all falls back to a labelled-text
 * reader ("指令：… 输入：… 输出：…" / "Instruction: … Input: … Output: …").
 */
import { jsonrepair } from 'jsonrepair';

export interface Item {
  instruction: string;
  input: string;
  output: string;
}

export type ParseRejectReason = 'malformed-json' | 'truncated' | 'not-an-item' | 'missing-instruction' | 'missing-output' | 'no-items-found';

export interface ParseReject {
  reason: ParseRejectReason;
  /** the text the decision was made on (one object's span, or the whole reply) */
  raw: string;
}

export interface ParseResult {
  items: Item[];
  rejects: ParseReject[];
}

export interface ParseOptions {
  /** the choice's finish_reason; 'length' means the reply was cut off */
  finishReason?: string | null;
}

interface Span {
  start: number;
  end: number; // exclusive
  complete: boolean;
}

/**
 * Top-level {...} spans of `text` from `from` on. Strings are "..."-delimited with backslash escapes;
 * braces inside them do not count. A span still open at the end of text is returned with complete=false.
 */
export function scanObjectSpans(text: string, from = 0, to = text.length): Span[] {
  const spans: Span[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      else if (c === 10 /* newline */ && looksLikeNewField(text, i + 1)) inString = false; // unterminated string: recover at next field
      continue;
    }
    if (c === 34) {
      if (depth > 0) inString = true;
    } else if (c === 123 /* { */) {
      if (depth === 0) start = i;
      depth++;
    } else if (c === 125 /* } */ && depth > 0) {
      depth--;
      if (depth === 0) {
        spans.push({ start, end: i + 1, complete: true });
        start = -1;
      }
    }
  }
  if (depth > 0 && start >= 0) spans.push({ start, end: to, complete: false });
  return spans;
}

/** After a raw newline inside a string: does the next line start a new "key": field or close the object? */
function looksLikeNewField(text: string, at: number): boolean {
  const rest = text.slice(at, at + 64);
  return /^\s*(?:"[^"\n]{1,40}"\s*[:：]|[}\]])/.test(rest);
}

/** Chinese punctuation used as JSON punctuation (“key”：“value”，) → ASCII, only in delimiter positions. */
export function fixJsonPunctuation(s: string): string {
  return s
    .replace(/([{[,，:：]\s*)[“”]/g, '$1"')
    .replace(/[“”](\s*[:：,，}\]])/g, '"$1')
    .replace(/"(\s*)：/g, '"$1:')
    .replace(/：(\s*)"/g, ':$1"')
    .replace(/"(\s*)，(\s*)"/g, '"$1,$2"');
}

function tryParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** Parses one object span, with increasingly forgiving repairs. undefined = could not be parsed. */
export function parseObjectText(s: string): unknown {
  let v = tryParse(s);
  if (v !== undefined) return v;
  const fixed = fixJsonPunctuation(s);
  v = tryParse(fixed);
  if (v !== undefined) return v;
  for (const candidate of [fixed, s]) {
    try {
      v = tryParse(jsonrepair(candidate));
      if (v !== undefined) return v;
    } catch {
      /* try the next candidate */
    }
  }
  return undefined;
}

type Field = 'instruction' | 'input' | 'output';

const KEY_MAP: Record<string, Field> = {
  instruction: 'instruction',
  instructions: 'instruction',
  指令: 'instruction',
  指示: 'instruction',
  任务: 'instruction',
  任务指令: 'instruction',
  prompt: 'instruction',
  question: 'instruction',
  问题: 'instruction',
  input: 'input',
  inputs: 'input',
  输入: 'input',
  输入内容: 'input',
  context: 'input',
  上下文: 'input',
  output: 'output',
  outputs: 'output',
  输出: 'output',
  输出内容: 'output',
  response: 'output',
  answer: 'output',
  回答: 'output',
  答案: 'output',
  回复: 'output',
  响应: 'output',
};

export function normalizeKey(key: string): Field | undefined {
  const k = key.toLowerCase().replace(/[<>\s_\-"'《》「」【】[\]()（）:：]/g, '');
  return KEY_MAP[k];
}

/** Values that mean "no input" (the template's own placeholder, "无", "N/A", …). */
const EMPTY_INPUTS = new Set([
  '',
  'noinput',
  'none',
  'na',
  'n/a',
  'null',
  'nil',
  'empty',
  'input',
  '无',
  '无输入',
  '空',
  '没有',
  '暂无',
  '输入',
  '不需要输入',
  '无需输入',
  '此处无输入',
  '无input',
  'nan',
  '-',
  '—',
  '/',
  '。',
  '.',
]);

export function isPlaceholderInput(value: string): boolean {
  const k = value
    .trim()
    .toLowerCase()
    .replace(/[<>\s"'《》「」【】[\]()（）]/g, '');
  return EMPTY_INPUTS.has(k);
}

function coerceText(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join('\n').trim();
  return JSON.stringify(v);
}

function hasItemKeys(o: Record<string, unknown>): boolean {
  return Object.keys(o).some((k) => normalizeKey(k) !== undefined);
}

/** Maps one parsed object to an item or a reject reason. */
export function toItem(value: unknown): Item | ParseRejectReason {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not-an-item';
  const fields: Partial<Record<Field, string>> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const f = normalizeKey(k);
    if (f && fields[f] === undefined) fields[f] = coerceText(v);
  }
  const instruction = fields.instruction ?? '';
  const output = fields.output ?? '';
  if (!instruction) return 'missing-instruction';
  if (!output) return 'missing-output';
  const input = fields.input === undefined || isPlaceholderInput(fields.input) ? '' : fields.input;
  return { instruction, input, output };
}

/** A parsed value → the item-like objects in it (unwrapping {"items": [...]}, {"data": [...]}, arrays). */
function collectCandidates(value: unknown, out: unknown[], depth = 0): void {
  if (depth > 3) return;
  if (Array.isArray(value)) {
    for (const v of value) collectCandidates(v, out, depth + 1);
    return;
  }
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (hasItemKeys(o)) {
      out.push(o);
      return;
    }
    const arrays = Object.values(o).filter((v) => Array.isArray(v) || (v !== null && typeof v === 'object'));
    if (arrays.length > 0) {
      for (const v of arrays) collectCandidates(v, out, depth + 1);
      return;
    }
  }
  out.push(value);
}

function pushResult(value: unknown, raw: string, result: ParseResult): void {
  const r = toItem(value);
  if (typeof r === 'string') result.rejects.push({ reason: r, raw });
  else result.items.push(r);
}

/** Wrappers around items are one or two levels deep; a reply nesting deeper is refused as malformed (no stack overflow). */
const MAX_SPAN_DEPTH = 8;

function parseSpans(text: string, spans: Span[], opts: ParseOptions, result: ParseResult, depth = 0): void {
  if (depth > MAX_SPAN_DEPTH) {
    result.rejects.push({ reason: 'malformed-json', raw: text.slice(spans[0]!.start, spans[spans.length - 1]!.end).slice(0, 4000) });
    return;
  }
  for (let s = 0; s < spans.length; s++) {
    const span = spans[s];
    const raw = text.slice(span.start, span.end);
    if (!span.complete) {
      // An unclosed wrapper ({"items": [ {...}, {...}, {"instr…) still holds complete inner items.
      const inner = scanObjectSpans(text, span.start + 1, span.end);
      if (inner.length > 0) {
        parseSpans(text, inner, opts, result, depth + 1);
        continue;
      }
      // A lone unclosed item: accept it only if the reply was not cut off and its last string closed.
      const closedString = /"\s*,?\s*$/.test(raw);
      const v = opts.finishReason === 'length' || !closedString ? undefined : parseObjectText(raw);
      const item = v === undefined ? undefined : toItem(v);
      if (item === undefined || typeof item === 'string') result.rejects.push({ reason: 'truncated', raw });
      else result.items.push(item);
      continue;
    }
    const value = parseObjectText(raw);
    if (value === undefined) {
      // Maybe two objects glued together by a stray quote; try the inside.
      const inner = scanObjectSpans(text, span.start + 1, span.end - 1);
      if (inner.length > 1) parseSpans(text, inner, opts, result, depth + 1);
      else result.rejects.push({ reason: 'malformed-json', raw });
      continue;
    }
    const candidates: unknown[] = [];
    collectCandidates(value, candidates);
    if (candidates.length === 0) result.rejects.push({ reason: 'not-an-item', raw: raw.slice(0, 4000) }); // nested too deep to hold items
    for (const c of candidates) pushResult(c, candidates.length === 1 ? raw : JSON.stringify(c), result);
  }
}

const LABELS: Array<[Field, RegExp]> = [
  ['instruction', /^(?:#+\s*)?(?:\d+\s*[.、)]\s*)?(?:\*\*)?(?:instruction|指令|任务)(?:\*\*)?\s*[:：](?:\*\*)?\s*/i],
  ['input', /^(?:#+\s*)?(?:\d+\s*[.、)]\s*)?(?:\*\*)?(?:input|输入)(?:\*\*)?\s*[:：](?:\*\*)?\s*/i],
  ['output', /^(?:#+\s*)?(?:\d+\s*[.、)]\s*)?(?:\*\*)?(?:output|输出|回答|答案|response|answer)(?:\*\*)?\s*[:：](?:\*\*)?\s*/i],
];

/** Fallback for replies without JSON: blocks of "Instruction: … / Input: … / Output: …" lines. */
export function parseLabelled(text: string, opts: ParseOptions): ParseResult {
  const result: ParseResult = { items: [], rejects: [] };
  const records: Array<Partial<Record<Field, string[]>>> = [];
  let current: Partial<Record<Field, string[]>> | undefined;
  let field: Field | undefined;
  for (const line of text.split('\n')) {
    const hit = LABELS.find(([, re]) => re.test(line.trim()));
    if (hit) {
      const [f, re] = hit;
      if (f === 'instruction' || !current || current[f]) {
        current = {};
        records.push(current);
      }
      field = f;
      current[f] = [line.trim().replace(re, '')];
    } else if (current && field) {
      if (/^\s*(?:###|---)\s*$/.test(line)) field = undefined;
      else current[field]!.push(line);
    }
  }
  records.forEach((r, i) => {
    const raw = (['instruction', 'input', 'output'] as Field[])
      .filter((f) => r[f])
      .map((f) => `${f}: ${r[f]!.join('\n')}`)
      .join('\n');
    if (i === records.length - 1 && opts.finishReason === 'length') {
      result.rejects.push({ reason: 'truncated', raw });
      return;
    }
    const obj: Record<string, string> = {};
    for (const f of ['instruction', 'input', 'output'] as Field[]) if (r[f]) obj[f] = r[f]!.join('\n').trim();
    pushResult(obj, raw, result);
  });
  return result;
}

export function parseReply(text: string, opts: ParseOptions = {}): ParseResult {
  const clean = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const result: ParseResult = { items: [], rejects: [] };
  const spans = scanObjectSpans(clean);
  if (spans.length > 0) {
    parseSpans(clean, spans, opts, result);
    return result;
  }
  const labelled = parseLabelled(clean, opts);
  if (labelled.items.length + labelled.rejects.length > 0) return labelled;
  if (clean.trim()) result.rejects.push({ reason: 'no-items-found', raw: clean });
  return result;
}
