/**
 * `cllama-crawl crawl` (the default command): crawl until --out holds --count unique items, resuming
 * what is there. Progress on stderr: a bar on a terminal, status lines every --status-every seconds
 * otherwise (or on a terminal when --status-every is given); --no-progress shows neither, --quiet
 * neither and no notices. The result on stdout: summary lines, or one JSON object with --json. Exit
 * codes: EXIT_OK (done), EXIT_INCOMPLETE (stopped by --max-requests), EXIT_INTERRUPTED (Ctrl-C).
 */
import { defineCommand, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, integerFlag, numberFlag } from '@cllama/core';
import cliProgress from 'cli-progress';
import { crawl, type CrawlStatus, type CrawlSummary, DEFAULT_MAX_FAILURE_STREAK, DEFAULT_MAX_FAILURE_TIME_MS, DEFAULT_MAX_REPLY_BYTES } from '../crawler.js';
import { ConfigError } from '../errors.js';
import { defaultFilterOptions, type FilterOptions } from '../filters.js';
import { parseListFile } from '../prompt.js';
import { PROMPT_ARGS, type PromptFlags, promptSpecFrom, readText, say, warn } from './common.js';

interface CrawlFlags extends PromptFlags {
  out: string;
  count: number;
  concurrency: number;
  model: string;
  baseUrl?: string;
  rpm?: number;
  tpm?: number;
  structured?: boolean;
  maxTokens?: number;
  temperature?: number;
  timeout: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  priceIn?: number;
  priceOut?: number;
  rouge?: boolean | string;
  /** a file, or false for --no-blacklist */
  blacklist?: string | false;
  maxRequests?: number;
  maxFailureStreak: number;
  maxFailureTime: number;
  maxReplyMb: number;
  statusEvery: number;
  progress: boolean;
  quiet?: boolean;
  json?: boolean;
}

function statusLine(s: CrawlStatus): string {
  const rate = s.elapsedMs > 0 ? (s.acceptedThisRun / (s.elapsedMs / 1000)).toFixed(1) : '0';
  const cost = s.usageAllRuns.costUsd !== undefined ? ` cost=$${s.usageAllRuns.costUsd.toFixed(4)}` : '';
  const rejected = Object.values(s.items.rejected).reduce((a, b) => a + b, 0);
  return (
    `[${new Date().toISOString()}] items ${s.accepted}/${s.target} (+${s.acceptedThisRun}, ${rate}/s) ` +
    `requests ok=${s.requests.succeeded} failed=${s.requests.failed} retries=${s.attempts.failed} inflight=${s.inFlight} ` +
    `rejected=${rejected} tokens in=${s.usageAllRuns.promptTokens} out=${s.usageAllRuns.completionTokens}${cost}`
  );
}

function filtersFrom(o: CrawlFlags): FilterOptions {
  const filters = defaultFilterOptions(o.lang);
  if (typeof o.blacklist === 'string') {
    const words = parseListFile(readText(o.blacklist, 'blacklist'));
    filters.blacklistWords = words.filter((w) => /^[\x00-\x7f]+$/.test(w));
    filters.blacklistSubstrings = words.filter((w) => !/^[\x00-\x7f]+$/.test(w));
  } else if (o.blacklist === false) {
    filters.blacklistWords = [];
    filters.blacklistSubstrings = [];
  }
  return filters;
}

function rougeThresholdFrom(rouge: CrawlFlags['rouge']): number | undefined {
  const threshold = rouge === true ? 0.7 : rouge === undefined || rouge === false ? undefined : Number(rouge);
  if (threshold !== undefined && !(threshold > 0 && threshold < 1)) throw new ConfigError('--rouge threshold must be in (0, 1), e.g. 0.7');
  return threshold;
}

/** The progress display: the bar, or status lines (every `everyMs`, or at every status when 0), or nothing. */
function progressDisplay(mode: 'bar' | 'lines' | 'none', everyMs: number) {
  const bar =
    mode === 'bar'
      ? new cliProgress.SingleBar(
          {
            format: 'crawl [{bar}] {value}/{total} items | {rate}/s | req ok {ok} fail {failed} | retries {retries} | tokens {tokens}{cost}',
            stream: process.stderr,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let barStarted = false;
  let latest: CrawlStatus | undefined;
  // background runs: a heartbeat status line even while nothing completes (long Retry-After waits)
  const heartbeat = mode === 'lines' && everyMs > 0 ? setInterval(() => latest && warn(statusLine(latest)), everyMs) : undefined;
  heartbeat?.unref();
  const onStatus = (s: CrawlStatus) => {
    latest = s;
    if (bar) {
      const payload = {
        rate: s.elapsedMs > 0 ? (s.acceptedThisRun / (s.elapsedMs / 1000)).toFixed(1) : '0',
        ok: s.requests.succeeded,
        failed: s.requests.failed,
        retries: s.attempts.failed,
        tokens: s.usageAllRuns.promptTokens + s.usageAllRuns.completionTokens,
        cost: s.usageAllRuns.costUsd !== undefined ? ` | $${s.usageAllRuns.costUsd.toFixed(4)}` : '',
      };
      if (!barStarted) {
        bar.start(s.target, s.accepted, payload);
        barStarted = true;
      }
      bar.update(s.accepted, payload);
    } else if (mode === 'lines' && everyMs === 0) warn(statusLine(s));
  };
  const stop = () => {
    bar?.stop();
    if (heartbeat) clearInterval(heartbeat);
  };
  return { onStatus, stop };
}

/** Prints the result (summary lines, or one JSON object) and returns the exit code. */
function report(summary: CrawlSummary, json: boolean): number {
  const code = summary.complete ? EXIT_OK : summary.stopReason === 'aborted' ? EXIT_INTERRUPTED : EXIT_INCOMPLETE;
  if (json) {
    say(JSON.stringify(summary));
    return code;
  }
  say(statusLine(summary));
  if (summary.tornLinesRepaired)
    say(`repaired ${summary.tornLinesRepaired} torn last line(s) left by an interrupted run (text kept in ${summary.files.rejects})`);
  const rejected = Object.entries(summary.items.rejected)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  if (rejected) say(`rejected: ${rejected}`);
  if (summary.requests.failed) say(`${summary.requests.failed} request(s) failed after all retries; see ${summary.files.failures}`);
  if (code === EXIT_OK) say(`done: ${summary.accepted} items in ${summary.files.out}`);
  else if (code === EXIT_INTERRUPTED)
    say(`interrupted: ${summary.accepted}/${summary.target} items in ${summary.files.out}; run the same command again to continue`);
  else say(`stopped after --max-requests with ${summary.accepted}/${summary.target} items; run again to continue`);
  return code;
}

/** Ctrl-C / SIGTERM: the first stops the crawl after the writes in flight; a second quits at once. Returns the un-install. */
function stopOnSignals(controller: AbortController): () => void {
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    warn('cllama-crawl: stopping (finishing writes; press Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function runCrawl(o: CrawlFlags, statusEveryGiven: boolean): Promise<number> {
  const apiKeyEnv = process.env.OPENAI_API_KEY;
  const baseURL: string | undefined = o.baseUrl ?? process.env.OPENAI_BASE_URL;
  if (!apiKeyEnv?.trim() && !baseURL) {
    throw new ConfigError('set OPENAI_API_KEY (the key is read only from the environment), or give --base-url for a local server without a key');
  }
  const filters = filtersFrom(o);
  const rougeThreshold = rougeThresholdFrom(o.rouge);
  const controller = new AbortController();
  const uninstall = stopOnSignals(controller);
  const showProgress = o.progress && !o.quiet;
  const mode = !showProgress ? 'none' : process.stderr.isTTY && !statusEveryGiven ? 'bar' : 'lines';
  const display = progressDisplay(mode, o.statusEvery * 1000);
  try {
    const summary = await crawl({
      out: o.out,
      count: o.count,
      concurrency: o.concurrency,
      model: o.model,
      baseURL,
      apiKey: apiKeyEnv?.trim() || 'no-key', // a local server (--base-url) needs no key; the SDK refuses an empty one
      rpm: o.rpm,
      tpm: o.tpm,
      seed: o.seed,
      structured: !!o.structured,
      prompt: promptSpecFrom(o),
      filters,
      rougeThreshold,
      maxTokens: o.maxTokens,
      temperature: o.temperature,
      timeoutMs: o.timeout * 1000,
      retry: { maxAttempts: o.maxAttempts, baseDelayMs: o.retryBaseMs, maxDelayMs: o.retryMaxMs },
      priceIn: o.priceIn,
      priceOut: o.priceOut,
      maxRequests: o.maxRequests,
      maxFailureStreak: o.maxFailureStreak,
      maxFailureTimeMs: o.maxFailureTime * 1000,
      maxReplyBytes: Math.floor(o.maxReplyMb * (1 << 20)),
      signal: controller.signal,
      onStatus: display.onStatus,
      onNotice: o.quiet ? undefined : (line) => warn(`cllama-crawl: ${line}`),
    });
    display.stop();
    return report(summary, !!o.json);
  } finally {
    display.stop();
    uninstall();
  }
}

const int = (flag: string, min: number) => integerFlag(flag, { min });
const num = (flag: string, min: number, max?: number) => numberFlag(flag, { min, max });

export const crawlCommand = defineCommand<CrawlFlags>({
  meta: {
    name: 'crawl',
    description: 'crawl until --out holds --count unique items (resumes if --out exists)',
    example: 'cllama-crawl --out items.jsonl --count 1000 --base-url http://localhost:8000/v1 --model qwen2',
    isDefault: true,
  },
  args: {
    out: {
      type: 'string',
      valueHint: 'file.jsonl',
      description: 'output JSON-lines file (append-only; side files <out>.rejects/.failures/.journal.jsonl)',
      required: true,
    },
    count: { type: 'string', valueHint: 'n', description: 'number of unique items wanted in --out', parse: int('--count', 1), required: true },
    concurrency: { type: 'string', valueHint: 'k', description: 'requests in flight', parse: int('--concurrency', 1), default: 8 },
    model: { type: 'string', valueHint: 'name', description: 'model name', default: 'gpt-3.5-turbo' },
    'base-url': {
      type: 'string',
      valueHint: 'url',
      description: 'OpenAI-compatible API base, e.g. http://localhost:8000/v1 (default: OPENAI_BASE_URL or OpenAI)',
    },
    rpm: { type: 'string', valueHint: 'n', description: 'client-side limit: requests per minute', parse: int('--rpm', 1) },
    tpm: { type: 'string', valueHint: 'n', description: 'client-side limit: tokens per minute', parse: int('--tpm', 1) },
    structured: { type: 'boolean', description: 'ask for JSON-schema structured output (falls back to free text if the server rejects it)' },
    'max-tokens': { type: 'string', valueHint: 'n', description: 'max_tokens per reply', parse: int('--max-tokens', 1) },
    temperature: { type: 'string', valueHint: 't', description: 'sampling temperature', parse: num('--temperature', 0, 2) },
    timeout: { type: 'string', valueHint: 's', description: 'per-attempt timeout in seconds', parse: num('--timeout', 0.001), default: 180 },
    'max-attempts': {
      type: 'string',
      valueHint: 'n',
      description: 'attempts per request before it is recorded as failed',
      parse: int('--max-attempts', 1),
      default: 6,
    },
    'retry-base-ms': {
      type: 'string',
      valueHint: 'ms',
      description: 'first backoff delay (doubles per attempt, full jitter)',
      parse: int('--retry-base-ms', 0),
      default: 1000,
    },
    'retry-max-ms': { type: 'string', valueHint: 'ms', description: 'largest backoff delay', parse: int('--retry-max-ms', 0), default: 60_000 },
    'price-in': { type: 'string', valueHint: 'usd', description: 'USD per 1M prompt tokens (cost estimate)', parse: num('--price-in', 0) },
    'price-out': { type: 'string', valueHint: 'usd', description: 'USD per 1M completion tokens (cost estimate)', parse: num('--price-out', 0) },
    rouge: {
      type: 'string',
      valueHint: 'threshold',
      optionalValue: true,
      description: 'drop instructions whose ROUGE-L F with a kept one exceeds threshold (default 0.7 when given)',
    },
    blacklist: {
      type: 'string',
      valueHint: 'file',
      description: 'keyword blacklist, one per line (default: Stanford Alpaca list, + Chinese equivalents for zh)',
    },
    'no-blacklist': { type: 'boolean', description: 'turn the keyword blacklist off' },
    'max-requests': { type: 'string', valueHint: 'n', description: 'stop after this many requests in this run (exit 3)', parse: int('--max-requests', 1) },
    'max-failure-streak': {
      type: 'string',
      valueHint: 'n',
      description: 'give up (exit 1) when this many attempts in a row fail, any worker, 429s not counted (a reply that keeps no item counts as failed)',
      parse: int('--max-failure-streak', 1),
      default: DEFAULT_MAX_FAILURE_STREAK,
    },
    'max-failure-time': {
      type: 'string',
      valueHint: 's',
      description: 'give up (exit 1) when attempts keep failing for this many seconds with no reply that kept an item',
      parse: num('--max-failure-time', 0.001),
      default: DEFAULT_MAX_FAILURE_TIME_MS / 1000,
    },
    'max-reply-mb': {
      type: 'string',
      valueHint: 'mb',
      description: 'largest reply read, in MiB; a larger one is cut off and its request fails',
      parse: num('--max-reply-mb', 0.001, 1024),
      default: DEFAULT_MAX_REPLY_BYTES / (1 << 20),
    },
    'status-every': {
      type: 'string',
      valueHint: 's',
      description: 'seconds between status lines (0: one per completed request); given, status lines replace the bar on a terminal too',
      parse: num('--status-every', 0),
      default: 30,
      group: 'Output:',
    },
    'no-progress': { type: 'boolean', description: 'no progress bar and no status lines' },
    quiet: { type: 'boolean', description: 'no progress and no notices: only errors on stderr' },
    json: { type: 'boolean', description: 'print the summary as one JSON object' },
    ...PROMPT_ARGS,
  },
  run: ({ args, given }) => runCrawl(args, given('statusEvery')),
});
