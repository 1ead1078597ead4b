/** @cllama/prompt-crawler — self-instruct data crawler for any OpenAI-compatible chat-completions server. */
export const PACKAGE_NAME = '@cllama/prompt-crawler';

export { crawl, type CrawlOptions, type CrawlStatus, type CrawlSummary } from './crawler.js';
export {
  buildPrompt,
  defaultPromptSpec,
  parseListFile,
  EN_TASKS,
  EN_TEMPLATE,
  EN_TOPICS,
  ITEMS_JSON_SCHEMA,
  ZH_TASKS,
  ZH_TEMPLATE,
  ZH_TOPICS,
  type GeneratedPrompt,
  type PromptLanguage,
  type PromptSpec,
} from './prompt.js';
export { parseReply, parseObjectText, scanObjectSpans, isPlaceholderInput, normalizeKey, toItem, type Item, type ParseResult, type ParseReject, type ParseRejectReason } from './parse.js';
export {
  CHINESE_BLACKLIST,
  STANFORD_BLACKLIST,
  ItemFilter,
  defaultFilterOptions,
  normalizeInstruction,
  textUnits,
  type FilterOptions,
  type FilterRejectReason,
} from './filters.js';
export { RougeLIndex, rougeTokens, lcsLengthDP, rougeLF } from './rouge.js';
export { ChatClient, describeError, retryAfterMs, type RetryPolicy, type Completion, type ErrorInfo } from './client.js';
export { RateLimiter, type RateLimits } from './ratelimit.js';
export { Redactor, REDACTED } from './redact.js';
export { OutputStore, readJsonLines, sideFiles, type FailureRecord, type JournalRecord, type RejectRecord, type TornTail } from './store.js';
export { CrawlerError, ConfigError, OutputFileError, LockedError, FatalApiError, TooManyFailuresError } from './errors.js';
export { requestRng, sample, randInt } from './rng.js';
