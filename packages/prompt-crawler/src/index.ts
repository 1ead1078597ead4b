/**
 * @cllama/prompt-crawler — self-instruct data crawler for any OpenAI-compatible chat-completions
 * server. This file is the public API (see README.md); everything else is internal.
 */
export const PACKAGE_NAME = '@cllama/prompt-crawler';

export { crawl, type CrawlOptions, type CrawlStatus, type CrawlSummary } from './crawler.js';
export { CrawlerError, ConfigError, OutputFileError, LockedError, FatalApiError, TooManyFailuresError } from './errors.js';
// prompts
export {
  buildPrompt,
  defaultPromptSpec,
  parseListFile,
  EN_TASKS,
  EN_TEMPLATE,
  EN_TOPICS,
  ZH_TASKS,
  ZH_TEMPLATE,
  ZH_TOPICS,
  type GeneratedPrompt,
  type PromptLanguage,
  type PromptSpec,
} from './prompt.js';
// replies → items, filters, near-duplicate index
export { parseReply, type Item, type ParseResult } from './parse.js';
export { CHINESE_BLACKLIST, STANFORD_BLACKLIST, defaultFilterOptions, type FilterOptions } from './filters.js';
export { RougeLIndex } from './rouge.js';
export type { RetryPolicy } from './client.js';
export type { RateLimits } from './ratelimit.js';
