/** cllama-crawl: the command-line front end of crawl(). */
import { readFileSync } from 'node:fs';
import { parseFiniteNumber, parseWholeNumber, runMain } from '@cllama/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { crawl, DEFAULT_MAX_FAILURE_STREAK, DEFAULT_MAX_FAILURE_TIME_MS, DEFAULT_MAX_REPLY_BYTES, type CrawlStatus } from './crawler.js';
import { ConfigError } from './errors.js';
import { defaultFilterOptions } from './filters.js';
import { buildPrompt, defaultPromptSpec, parseListFile, type PromptLanguage, type PromptSpec } from './prompt.js';
import { Redactor } from './redact.js';

const redactor = new Redactor([process.env.OPENAI_API_KEY]);
const say = (line: string) => process.stdout.write(redactor.redact(line) + '\n');
const warn = (line: string) => process.stderr.write(redactor.redact(line) + '\n');

/** A whole number written in digits ('1e99', '1e3', '0x10', '' are not) and exactly representable. */
function int(name: string, min: number) {
  return (v: string) => {
    const n = parseWholeNumber(v);
    if (Number.isNaN(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}
function num(name: string, min: number, max = Number.POSITIVE_INFINITY) {
  return (v: string) => {
    const n = parseFiniteNumber(v);
    if (Number.isNaN(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}]`);
    return n;
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}

interface PromptFlags {
  lang: PromptLanguage;
  topics?: string;
  tasks?: string;
  template?: string;
  itemsPerRequest: number;
}

function promptSpecFrom(o: PromptFlags): PromptSpec {
  const spec = defaultPromptSpec(o.lang);
  if (o.topics) spec.topics = parseListFile(readText(o.topics, 'topics'));
  if (o.tasks) spec.tasks = parseListFile(readText(o.tasks, 'tasks'));
  if (o.template) spec.template = readText(o.template, 'template');
  spec.itemsPerRequest = o.itemsPerRequest;
  if (spec.topics.length === 0) throw new ConfigError('the topics list is empty; put one topic per line');
  if (spec.tasks.length === 0) throw new ConfigError('the tasks list is empty; put one task type per line');
  return spec;
}

function addPromptOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--lang <lang>', 'prompt language').choices(['zh', 'en']).default('zh'))
    .option('--seed <n>', 'random seed for prompts', int('--seed', 0), 42)
    .option('--topics <file>', 'topic list, one per line (default: the built-in ~80)')
    .option('--tasks <file>', 'task-type list, one per line (default: the built-in 14)')
    .option('--template <file>', 'prompt template with {topics} {tasks} {inputMaxChars} {outputMaxChars} {count}')
    .option('--items-per-request <n>', 'items asked for per request', int('--items-per-request', 1), 20);
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

// biome-ignore lint/suspicious/noExplicitAny: commander's option bag, read field by field below
async function runCrawl(o: Record<string, any>): Promise<number> {
  const apiKeyEnv = process.env.OPENAI_API_KEY;
  const baseURL: string | undefined = o.baseUrl ?? process.env.OPENAI_BASE_URL;
  if (!apiKeyEnv?.trim() && !baseURL) {
    throw new ConfigError('set OPENAI_API_KEY (the key is read only from the environment), or give --base-url for a local server without a key');
  }
  const filters = defaultFilterOptions(o.lang);
  if (o.blacklist) {
    const words = parseListFile(readText(o.blacklist, 'blacklist'));
    filters.blacklistWords = words.filter((w) => /^[\x00-\x7f]+$/.test(w));
    filters.blacklistSubstrings = words.filter((w) => !/^[\x00-\x7f]+$/.test(w));
  } else if (o.noBlacklist) {
    filters.blacklistWords = [];
    filters.blacklistSubstrings = [];
  }
  const rougeThreshold = o.rouge === true ? 0.7 : o.rouge === undefined || o.rouge === false ? undefined : Number(o.rouge);
  if (rougeThreshold !== undefined && !(rougeThreshold > 0 && rougeThreshold < 1)) throw new ConfigError('--rouge threshold must be in (0, 1), e.g. 0.7');

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    warn('cllama-crawl: stopping (finishing writes; press Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const useBar = !o.quiet && process.stderr.isTTY;
  const bar = useBar
    ? new cliProgress.SingleBar(
        {
          format: 'crawl [{bar}] {value}/{total} items | {rate}/s | req ok {ok} fail {failed} | retries {retries} | tokens {tokens}{cost}',
          stream: process.stderr,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const everyMs = o.statusEvery * 1000;
  let barStarted = false;
  let latest: CrawlStatus | undefined;
  // background runs: a heartbeat status line even while nothing completes (long Retry-After waits)
  const heartbeat = !bar && everyMs > 0 ? setInterval(() => latest && warn(statusLine(latest)), everyMs) : undefined;
  heartbeat?.unref();
  const onStatus = (s: CrawlStatus) => {
    latest = s;
    const payload = {
      rate: s.elapsedMs > 0 ? (s.acceptedThisRun / (s.elapsedMs / 1000)).toFixed(1) : '0',
      ok: s.requests.succeeded,
      failed: s.requests.failed,
      retries: s.attempts.failed,
      tokens: s.usageAllRuns.promptTokens + s.usageAllRuns.completionTokens,
      cost: s.usageAllRuns.costUsd !== undefined ? ` | $${s.usageAllRuns.costUsd.toFixed(4)}` : '',
    };
    if (bar) {
      if (!barStarted) {
        bar.start(s.target, s.accepted, payload);
        barStarted = true;
      }
      bar.update(s.accepted, payload);
    } else if (everyMs === 0) warn(statusLine(s));
  };

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
      prompt: promptSpecFrom(o as PromptFlags),
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
      onStatus,
      onNotice: (line) => warn(`cllama-crawl: ${line}`),
    });
    bar?.stop();
    say(statusLine(summary));
    if (summary.tornLinesRepaired)
      say(`repaired ${summary.tornLinesRepaired} torn last line(s) left by an interrupted run (text kept in ${summary.files.rejects})`);
    const rejected = Object.entries(summary.items.rejected)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    if (rejected) say(`rejected: ${rejected}`);
    if (summary.requests.failed) say(`${summary.requests.failed} request(s) failed after all retries; see ${summary.files.failures}`);
    if (summary.complete) {
      say(`done: ${summary.accepted} items in ${summary.files.out}`);
      return 0;
    }
    if (summary.stopReason === 'aborted') {
      say(`interrupted: ${summary.accepted}/${summary.target} items in ${summary.files.out}; run the same command again to continue`);
      return 130;
    }
    say(`stopped after --max-requests with ${summary.accepted}/${summary.target} items; run again to continue`);
    return 3;
  } finally {
    bar?.stop();
    if (heartbeat) clearInterval(heartbeat);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function buildProgram(): Command {
  const program = new Command('cllama-crawl').description(
    'Self-instruct data crawler for any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama). The API key is read from OPENAI_API_KEY only.',
  );

  const crawlCmd = program
    .command('crawl', { isDefault: true })
    .description('crawl until --out holds --count unique items (resumes if --out exists)')
    .requiredOption('--out <file.jsonl>', 'output JSON-lines file (append-only; side files <out>.rejects/.failures/.journal.jsonl)')
    .requiredOption('--count <n>', 'number of unique items wanted in --out', int('--count', 1))
    .option('--concurrency <k>', 'requests in flight', int('--concurrency', 1), 8)
    .option('--model <name>', 'model name', 'gpt-3.5-turbo')
    .option('--base-url <url>', 'OpenAI-compatible API base, e.g. http://localhost:8000/v1 (default: OPENAI_BASE_URL or OpenAI)')
    .option('--rpm <n>', 'client-side limit: requests per minute', int('--rpm', 1))
    .option('--tpm <n>', 'client-side limit: tokens per minute', int('--tpm', 1))
    .option('--structured', 'ask for JSON-schema structured output (falls back to free text if the server rejects it)')
    .option('--max-tokens <n>', 'max_tokens per reply', int('--max-tokens', 1))
    .option('--temperature <t>', 'sampling temperature', num('--temperature', 0, 2))
    .option('--timeout <s>', 'per-attempt timeout in seconds', num('--timeout', 0.001), 180)
    .option('--max-attempts <n>', 'attempts per request before it is recorded as failed', int('--max-attempts', 1), 6)
    .option('--retry-base-ms <ms>', 'first backoff delay (doubles per attempt, full jitter)', int('--retry-base-ms', 0), 1000)
    .option('--retry-max-ms <ms>', 'largest backoff delay', int('--retry-max-ms', 0), 60_000)
    .option('--price-in <usd>', 'USD per 1M prompt tokens (cost estimate)', num('--price-in', 0))
    .option('--price-out <usd>', 'USD per 1M completion tokens (cost estimate)', num('--price-out', 0))
    .option('--rouge [threshold]', 'drop instructions whose ROUGE-L F with a kept one exceeds threshold (default 0.7 when given)')
    .option('--blacklist <file>', 'keyword blacklist, one per line (default: Stanford Alpaca list, + Chinese equivalents for zh)')
    .option('--no-blacklist', 'turn the keyword blacklist off')
    .option('--max-requests <n>', 'stop after this many requests in this run', int('--max-requests', 1))
    .option(
      '--max-failure-streak <n>',
      'give up (exit 1) when this many attempts in a row fail, any worker, 429s not counted (a reply that keeps no item counts as failed)',
      int('--max-failure-streak', 1),
      DEFAULT_MAX_FAILURE_STREAK,
    )
    .option(
      '--max-failure-time <s>',
      'give up (exit 1) when attempts keep failing for this many seconds with no reply that kept an item',
      num('--max-failure-time', 0.001),
      DEFAULT_MAX_FAILURE_TIME_MS / 1000,
    )
    .option(
      '--max-reply-mb <mb>',
      'largest reply read, in MiB; a larger one is cut off and its request fails',
      num('--max-reply-mb', 0.001, 1024),
      DEFAULT_MAX_REPLY_BYTES / (1 << 20),
    )
    .option('--quiet', 'no progress bar; a status line every --status-every seconds (for background runs)')
    .option('--status-every <s>', 'seconds between status lines when quiet or not on a terminal', num('--status-every', 0), 30);
  addPromptOptions(crawlCmd).action(async (o) => {
    process.exitCode = await runCrawl({ ...o, noBlacklist: o.blacklist === false, blacklist: typeof o.blacklist === 'string' ? o.blacklist : undefined });
  });

  addPromptOptions(
    program
      .command('dry-run')
      .description('print one generated prompt without calling anything')
      .option('--index <n>', 'request number whose prompt to print', int('--index', 0), 0),
  ).action((o) => {
    say(buildPrompt(promptSpecFrom(o as PromptFlags), o.seed, o.index).text);
  });
  return program;
}

void runMain(buildProgram, { redact: (line) => redactor.redact(line) });
