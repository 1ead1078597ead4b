/** Options of a small in-process crawl against a test server (Chinese prompts and filters, free text, quick retries); `over` replaces any. */
import type { CrawlOptions } from '../../src/crawler.js';
import { defaultFilterOptions } from '../../src/filters.js';
import { defaultPromptSpec } from '../../src/prompt.js';

export function crawlOptions(out: string, url: string, apiKey: string, over: Partial<CrawlOptions> = {}): CrawlOptions {
  return {
    out,
    count: 5,
    concurrency: 1,
    model: 'test-model',
    baseURL: url,
    apiKey,
    seed: 1,
    structured: false,
    prompt: defaultPromptSpec('zh'),
    filters: defaultFilterOptions('zh'),
    timeoutMs: 2000,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 50 },
    ...over,
  };
}
