/**
 * What the cllama-crawl subcommands share: every line printed passes the API-key redactor, and the
 * prompt flags (language, topics, tasks, template, items per request, seed) build one PromptSpec.
 */
import { readFileSync } from 'node:fs';
import { integerFlag } from '@cllama/core';
import { ConfigError } from '../errors.js';
import { defaultPromptSpec, parseListFile, type PromptLanguage, type PromptSpec } from '../prompt.js';
import { Redactor } from '../redact.js';

export const redactor = new Redactor([process.env.OPENAI_API_KEY]);
/** A line of the result, on stdout. */
export const say = (line: string) => process.stdout.write(redactor.redact(line) + '\n');
/** A line for the person watching, on stderr. */
export const warn = (line: string) => process.stderr.write(redactor.redact(line) + '\n');

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}

export interface PromptFlags {
  lang: PromptLanguage;
  seed: number;
  topics?: string;
  tasks?: string;
  template?: string;
  itemsPerRequest: number;
}

export function promptSpecFrom(o: PromptFlags): PromptSpec {
  const spec = defaultPromptSpec(o.lang);
  if (o.topics) spec.topics = parseListFile(readText(o.topics, 'topics'));
  if (o.tasks) spec.tasks = parseListFile(readText(o.tasks, 'tasks'));
  if (o.template) spec.template = readText(o.template, 'template');
  spec.itemsPerRequest = o.itemsPerRequest;
  if (spec.topics.length === 0) throw new ConfigError('the topics list is empty; put one topic per line');
  if (spec.tasks.length === 0) throw new ConfigError('the tasks list is empty; put one task type per line');
  return spec;
}

/** The prompt flags of `crawl` and `dry-run`, listed under their own help heading. */
export const PROMPT_ARGS = {
  lang: { type: 'string', valueHint: 'lang', description: 'prompt language', choices: ['zh', 'en'], default: 'zh', group: 'Prompt:' },
  seed: { type: 'string', valueHint: 'n', description: 'random seed for prompts', parse: integerFlag('--seed', { min: 0 }), default: 42, group: 'Prompt:' },
  topics: { type: 'string', valueHint: 'file', description: 'topic list, one per line (default: the built-in ~80)', group: 'Prompt:' },
  tasks: { type: 'string', valueHint: 'file', description: 'task-type list, one per line (default: the built-in 14)', group: 'Prompt:' },
  template: {
    type: 'string',
    valueHint: 'file',
    description: 'prompt template with {topics} {tasks} {inputMaxChars} {outputMaxChars} {count}',
    group: 'Prompt:',
  },
  'items-per-request': {
    type: 'string',
    valueHint: 'n',
    description: 'items asked for per request',
    parse: integerFlag('--items-per-request', { min: 1 }),
    default: 20,
    group: 'Prompt:',
  },
} as const;
