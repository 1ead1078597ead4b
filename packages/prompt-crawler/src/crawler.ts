/**
 * The crawl loop: `concurrency` workers each take the next request index, build its prompt, send it
 * (rate-limited, retried), and hand the reply to a single committer. The committer decides
 * synchronously, in arrival order, which items are kept (parse → filters → exact dedupe → optional
 * ROUGE-L), so the accepted count is always exact and never passes --count; the file writes of all
 * replies that arrive while a write is in flight are grouped into one append + fsync per file, in
 * order; the run returns only after every write is synced.
 *
 * The steps, each a method of CrawlRun over its explicit state: `validateCrawlOptions` (before anything is
 * opened or sent), `CrawlRun.open` (lock, load what earlier runs kept), `worker` × concurrency
 * (`nextRequest` → `client.request` → `recordCompletion` / `recordFailure` → `GroupCommit.add`), and
 * `finish` (drain the writes, close, summarize).
 *
 * Resume: everything in <out> is loaded first (dedupe set and ROUGE index rebuilt from it), request
 * numbering continues after the highest index in the journal/failures, and the run stops at exactly
 * --count items in <out>.
 *
 * Giving up: a failure streak — failed attempts of any worker since the last successful reply — ends
 * the run when it reaches --max-failure-streak attempts (429s not counted: they are the server pacing
 * us, and its Retry-After already pauses every worker) or has lasted --max-failure-time (429s
 * included). So a server that fails everything gets at most streak + concurrency − 1 more attempts.
 * A reply counts as successful only when it keeps an item: a 200 that yields none (junk, a refusal,
 * an empty list, only items the filters or the dedupe drop) is a failed attempt of the streak, of
 * kind `no-items`. Like a reply that does not parse, it is not retried — the next request, with its
 * own prompt, is the retry — and it stays in the journal, its fragments in the rejects file.
 *
 * Memory: what a run holds is the dedupe set and the ROUGE-L index (both grow with the items kept,
 * never with what the server sends), up to `concurrency` replies of at most --max-reply-mb each, and
 * the lines waiting for the next group commit — a worker waits for its write once more than
 * MAX_PENDING_CHARS are waiting, so a slow disk cannot make them pile up.
 */
import { setMaxListeners } from 'node:events';
import { apiKeyProblem, ChatClient, type AttemptFailure, type RetryPolicy } from './client.js';
import { ConfigError, TooManyFailuresError } from './errors.js';
import { ItemFilter, normalizeInstruction, type FilterOptions } from './filters.js';
import { parseReply, type Item } from './parse.js';
import { buildPrompt, type PromptSpec } from './prompt.js';
import { RateLimiter } from './ratelimit.js';
import { Redactor } from './redact.js';
import { RougeLIndex } from './rouge.js';
import { OutputStore, type FailureRecord, type JournalRecord, type RejectRecord } from './store.js';

export interface CrawlOptions {
  out: string;
  count: number;
  concurrency: number;
  model: string;
  baseURL?: string;
  apiKey: string;
  rpm?: number;
  tpm?: number;
  seed: number;
  structured: boolean;
  prompt: PromptSpec;
  filters: FilterOptions;
  /** drop items whose ROUGE-L F with a kept instruction exceeds this (Stanford: 0.7); undefined = off */
  rougeThreshold?: number;
  maxTokens?: number;
  temperature?: number;
  timeoutMs: number;
  retry: RetryPolicy;
  /** USD per 1M prompt / completion tokens, for the cost estimate */
  priceIn?: number;
  priceOut?: number;
  /** stop after this many requests in this run even if --count is not reached */
  maxRequests?: number;
  /** give up when this many attempts in a row fail, 429s not counted, a reply that keeps no item counted (default DEFAULT_MAX_FAILURE_STREAK) */
  maxFailureStreak?: number;
  /** give up when attempts have kept failing, with no successful reply (one that keeps an item), for this long (default DEFAULT_MAX_FAILURE_TIME_MS) */
  maxFailureTimeMs?: number;
  /** the largest reply body read; a larger one fails its request (default DEFAULT_MAX_REPLY_BYTES) */
  maxReplyBytes?: number;
  signal?: AbortSignal;
  onStatus?: (s: CrawlStatus) => void;
  /** override fetch (tests) */
  fetch?: typeof fetch;
  /** one-line notices the user should see (a server wait capped at --retry-max-ms) */
  onNotice?: (line: string) => void;
}

export interface CrawlStatus {
  target: number;
  /** items in the output file (previous runs + this run) */
  accepted: number;
  acceptedThisRun: number;
  resumedFrom: number;
  inFlight: number;
  requests: { started: number; succeeded: number; failed: number };
  attempts: { total: number; failed: number };
  items: { parsed: number; rejected: Record<string, number> };
  usage: { promptTokens: number; completionTokens: number; costUsd?: number };
  /** usage including earlier runs recorded in the journal */
  usageAllRuns: { promptTokens: number; completionTokens: number; costUsd?: number };
  tornLinesRepaired: number;
  elapsedMs: number;
}

export interface CrawlSummary extends CrawlStatus {
  complete: boolean;
  stopReason: 'count-reached' | 'max-requests' | 'aborted';
  files: { out: string; rejects: string; failures: string; journal: string };
}

/** Failed attempts in a row (429s not counted) that end a run. */
export const DEFAULT_MAX_FAILURE_STREAK = 50;
/** How long attempts may keep failing with no successful reply before the run ends: 15 minutes. */
export const DEFAULT_MAX_FAILURE_TIME_MS = 15 * 60_000;
/** The largest reply read: 8 MiB, some 20× a chat completion of 16k tokens even when every character is \u-escaped. */
export const DEFAULT_MAX_REPLY_BYTES = 8 << 20;
/** Characters waiting for the next group commit above which a worker waits for its write before the next request. */
const MAX_PENDING_CHARS = 16 << 20;

type Lines = { items: string[]; rejects: string[]; failures: string[]; journal: string[] };

/** A failed attempt as the failure streak sees it: an HTTP-level failure, or a reply that kept no item. */
type StreakFailure = { kind: string; status?: number; message: string };

function emptyLines(): Lines {
  return { items: [], rejects: [], failures: [], journal: [] };
}

function formatSeconds(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}

function cost(promptTokens: number, completionTokens: number, priceIn?: number, priceOut?: number): number | undefined {
  if (priceIn === undefined && priceOut === undefined) return undefined;
  return (promptTokens / 1e6) * (priceIn ?? 0) + (completionTokens / 1e6) * (priceOut ?? 0);
}

/**
 * Refuses what can only fail later (and would be retried as if the server were down): a --base-url that
 * is not an http(s) URL, an empty key for the OpenAI default endpoint. Runs before any file is touched.
 */
export function validateCrawlOptions(opts: CrawlOptions): void {
  const keyProblem = apiKeyProblem(opts.apiKey);
  if (keyProblem) {
    throw new ConfigError(`OPENAI_API_KEY contains ${keyProblem}, which no HTTP header can carry; set it again to the bare key (the key is not printed)`, {
      usage: true,
    });
  }
  if (opts.baseURL !== undefined && opts.baseURL !== '') {
    let url: URL | undefined;
    try {
      url = new URL(opts.baseURL);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError(`--base-url ${JSON.stringify(opts.baseURL)} is not an http(s) URL; give one like http://localhost:8000/v1`);
    }
  } else if (opts.apiKey.trim() === '') {
    throw new ConfigError('OPENAI_API_KEY is empty; set it to your key, or give --base-url for a local server without a key');
  }
}

/**
 * Group commit: the lines of every reply decided while a write is in flight are appended together by the
 * next write, in order; `drained` resolves once everything added so far is synced.
 */
class GroupCommit {
  private pending = emptyLines();
  /** characters in `pending` (a bound on its memory) */
  pendingChars = 0;
  private scheduled: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  constructor(private readonly store: OutputStore) {}

  add(lines: Lines): Promise<void> {
    for (const key of ['items', 'rejects', 'failures', 'journal'] as const) {
      for (const l of lines[key]) {
        this.pending[key].push(l);
        this.pendingChars += l.length;
      }
    }
    if (!this.scheduled) {
      const scheduled = this.tail.then(() => {
        const batch = this.pending;
        this.pending = emptyLines();
        this.pendingChars = 0;
        this.scheduled = undefined;
        return this.store.append(batch);
      });
      this.scheduled = scheduled;
      this.tail = scheduled.catch(() => undefined);
    }
    return this.scheduled;
  }

  async drained(): Promise<void> {
    await this.tail;
    if (this.scheduled) await this.scheduled;
  }

  /** waits for the writes without raising their errors (they were reported through add's promise) */
  settled(): Promise<void> {
    return this.tail;
  }
}

/** Wakes workers that wait for an in-flight reply to change the picture. */
class Notifier {
  private waiters: Array<() => void> = [];
  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  changed(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }
}

type RequestResult = Awaited<ReturnType<ChatClient['request']>>;

/** One crawl's state and steps. */
class CrawlRun {
  private readonly started = Date.now();
  private readonly redactor: Redactor;
  private readonly filter: ItemFilter;
  private readonly client: ChatClient;
  private readonly limiter: RateLimiter;
  private readonly controller = new AbortController();
  private readonly notifier = new Notifier();
  private readonly commits: GroupCommit;
  private readonly maxRequests: number;
  private readonly maxStreak: number;
  private readonly maxFailureTimeMs: number;
  private readonly onOuterAbort = () => this.controller.abort();
  private nextIndex: number;
  /** failed attempts since the last successful reply, 429s not counted */
  private streak = 0;
  /** when the first failed attempt since the last successful reply ended (429s included) */
  private streakSince: number | undefined;
  private completionTokensAvg: number;
  /** the error that stops the run (first one wins) */
  fatal: unknown;

  private constructor(
    private readonly opts: CrawlOptions,
    private readonly store: OutputStore,
    private readonly seen: Set<string>,
    private readonly rouge: RougeLIndex | undefined,
    readonly status: CrawlStatus,
    maxIndex: number,
    redactor: Redactor,
  ) {
    this.redactor = redactor;
    this.filter = new ItemFilter(opts.filters);
    this.commits = new GroupCommit(store);
    this.client = new ChatClient(
      {
        baseURL: opts.baseURL,
        apiKey: opts.apiKey,
        model: opts.model,
        timeoutMs: opts.timeoutMs,
        maxTokens: opts.maxTokens,
        temperature: opts.temperature,
        structured: opts.structured,
        fetch: opts.fetch,
        maxReplyBytes: opts.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
        onNotice: opts.onNotice ? (line) => opts.onNotice?.(redactor.redact(line)) : undefined,
      },
      redactor,
    );
    this.limiter = new RateLimiter({ rpm: opts.rpm, tpm: opts.tpm });
    setMaxListeners(0, this.controller.signal); // every in-flight request listens to it
    opts.signal?.addEventListener('abort', this.onOuterAbort, { once: true });
    this.maxRequests = opts.maxRequests ?? Number.POSITIVE_INFINITY;
    this.maxStreak = opts.maxFailureStreak ?? DEFAULT_MAX_FAILURE_STREAK;
    this.maxFailureTimeMs = opts.maxFailureTimeMs ?? DEFAULT_MAX_FAILURE_TIME_MS;
    this.nextIndex = maxIndex + 1;
    this.completionTokensAvg = opts.maxTokens ?? 2048;
  }

  /** Locks --out and loads what earlier runs kept into the dedupe set and the ROUGE-L index. */
  static async open(opts: CrawlOptions): Promise<CrawlRun> {
    const redactor = new Redactor([opts.apiKey]);
    const seen = new Set<string>();
    const rouge = opts.rougeThreshold !== undefined ? new RougeLIndex(opts.rougeThreshold) : undefined;
    // what earlier runs kept: streamed into the dedupe set and the ROUGE-L index (add only: already deduped)
    const { store, itemCount, previous, torn } = await OutputStore.open(opts.out, (it) => {
      seen.add(normalizeInstruction(it.instruction));
      rouge?.add(rouge.tokenIds(it.instruction));
    });
    const status: CrawlStatus = {
      target: opts.count,
      accepted: itemCount,
      acceptedThisRun: 0,
      resumedFrom: itemCount,
      inFlight: 0,
      requests: { started: 0, succeeded: 0, failed: 0 },
      attempts: { total: 0, failed: 0 },
      items: { parsed: 0, rejected: {} },
      usage: { promptTokens: 0, completionTokens: 0 },
      usageAllRuns: { promptTokens: previous.promptTokens, completionTokens: previous.completionTokens },
      tornLinesRepaired: torn.length,
      elapsedMs: 0,
    };
    for (const t of torn) if (t.file === opts.out) status.items.rejected['torn-line-on-resume'] = (status.items.rejected['torn-line-on-resume'] ?? 0) + 1;
    return new CrawlRun(opts, store, seen, rouge, status, previous.maxRequestIndex, redactor);
  }

  /** Records a reject (and counts its reason in `tally`, the reply's own count). */
  private reject(lines: string[], r: RejectRecord, tally: Record<string, number>): void {
    this.status.items.rejected[r.reason] = (this.status.items.rejected[r.reason] ?? 0) + 1;
    tally[r.reason] = (tally[r.reason] ?? 0) + 1;
    lines.push(this.redactor.redact(JSON.stringify(r)) + '\n');
  }

  /** Decides, synchronously and in arrival order, which parsed items are kept; returns how many. */
  private acceptItems(index: number, parsedItems: Item[], lines: Lines, tally: Record<string, number>): number {
    const { status, redactor, rouge } = this;
    let kept = 0;
    for (const raw of parsedItems) {
      const item: Item = {
        instruction: redactor.redact(raw.instruction),
        input: redactor.redact(raw.input),
        output: redactor.redact(raw.output),
      };
      const why = this.filter.check(item);
      if (why) {
        this.reject(lines.rejects, { request: index, reason: why, item }, tally);
        continue;
      }
      const key = normalizeInstruction(item.instruction);
      if (this.seen.has(key)) {
        this.reject(lines.rejects, { request: index, reason: 'duplicate', item }, tally);
        continue;
      }
      let ids: Int32Array | undefined;
      if (rouge) {
        ids = rouge.tokenIds(item.instruction);
        const sim = rouge.findSimilar(ids);
        if (sim) {
          this.reject(lines.rejects, { request: index, reason: 'rouge-similar', item, score: Number(sim.score.toFixed(4)) }, tally);
          continue;
        }
      }
      if (status.accepted >= this.opts.count) {
        this.reject(lines.rejects, { request: index, reason: 'surplus', item }, tally);
        continue;
      }
      this.seen.add(key);
      if (rouge && ids) rouge.add(ids);
      status.accepted++;
      status.acceptedThisRun++;
      kept++;
      lines.items.push(redactor.redact(JSON.stringify(item)) + '\n');
    }
    return kept;
  }

  /**
   * A reply: usage, parse, keep/reject, and its journal line. One that keeps an item ends the failure
   * streak; one that keeps none (unless --count was reached meanwhile) extends it (see the header).
   */
  private recordCompletion(index: number, result: RequestResult, lines: Lines, time: string): void {
    const { status } = this;
    const c = result.completion!;
    status.attempts.total++;
    status.requests.succeeded++;
    status.usage.promptTokens += c.promptTokens;
    status.usage.completionTokens += c.completionTokens;
    status.usageAllRuns.promptTokens += c.promptTokens;
    status.usageAllRuns.completionTokens += c.completionTokens;
    if (c.completionTokens > 0) this.completionTokensAvg = 0.9 * this.completionTokensAvg + 0.1 * c.completionTokens;
    const parsed = parseReply(c.text, { finishReason: c.finishReason });
    status.items.parsed += parsed.items.length;
    const tally: Record<string, number> = {};
    for (const r of parsed.rejects) this.reject(lines.rejects, { request: index, reason: r.reason, raw: r.raw.slice(0, 4000) }, tally);
    const kept = this.acceptItems(index, parsed.items, lines, tally);
    if (kept > 0 || tally.surplus) {
      this.streak = 0;
      this.streakSince = undefined;
    } else {
      const why = Object.entries(tally).map(([reason, n]) => `${reason} ${n}`);
      this.extendStreak({
        kind: 'no-items',
        message: `a reply (${c.text.length} characters, finish_reason ${c.finishReason ?? 'none'}) kept no item (${
          why.length ? `rejected: ${why.join(', ')}` : 'it held none'
        })`,
      });
    }
    const j: JournalRecord = {
      request: index,
      attempts: result.failures.length + 1,
      promptTokens: c.promptTokens,
      completionTokens: c.completionTokens,
      finishReason: c.finishReason,
      parsed: parsed.items.length,
      accepted: kept,
      rejected: parsed.items.length - kept + parsed.rejects.length,
      time,
    };
    lines.journal.push(this.redactor.redact(JSON.stringify(j)) + '\n');
  }

  /** A request that used up its attempts (or was cut short by giving up): its failure line. */
  private recordFailure(index: number, promptText: string, result: RequestResult, lines: Lines, time: string): void {
    this.status.requests.failed++;
    const f: FailureRecord = {
      request: index,
      prompt: promptText,
      attempts: result.failures.map(({ attempt, kind, status: st, message }) => ({ attempt, kind, status: st, message })),
      time,
    };
    lines.failures.push(this.redactor.redact(JSON.stringify(f)) + '\n');
  }

  /** Every failed attempt extends the failure streak. */
  private attemptFailed(f: AttemptFailure): void {
    this.status.attempts.total++;
    this.status.attempts.failed++;
    this.extendStreak(f);
  }

  /** A failed attempt or a reply that kept no item: a streak past either bound ends the run (unless --count is reached). */
  private extendStreak(f: StreakFailure): void {
    const { status } = this;
    const now = Date.now();
    this.streakSince ??= now;
    if (f.status !== 429) this.streak++;
    if (this.fatal !== undefined || status.accepted >= this.opts.count) return;
    const lasted = now - this.streakSince;
    let why: string | undefined;
    if (this.streak >= this.maxStreak) why = `${this.streak} attempts in a row failed (--max-failure-streak ${this.maxStreak})`;
    else if (lasted >= this.maxFailureTimeMs)
      why = `attempts kept failing for ${formatSeconds(lasted)} with no successful reply (--max-failure-time ${this.maxFailureTimeMs / 1000})`;
    if (!why) return;
    const paths = this.store.paths;
    this.fatal = new TooManyFailuresError(
      `gave up: ${why}; last error: ${f.kind}${f.status ? ` ${f.status}` : ''}: ${f.message.replace(/[.\s]+$/, '')}. ` +
        `${status.accepted}/${this.opts.count} items are kept in ${paths.out}; check the server, --base-url and --model, then run the same command again to continue (${
          f.kind === 'no-items' ? `what the replies held: ${paths.rejects}` : `failed requests: ${paths.failures}`
        })`,
    );
    this.controller.abort();
  }

  private yieldEstimate(): number {
    const { status } = this;
    return status.requests.succeeded > 0 ? Math.max(0.5, status.acceptedThisRun / status.requests.succeeded) : this.opts.prompt.itemsPerRequest;
  }

  /** 'stop', 'wait' (in-flight replies will probably finish the job), or the next request index. */
  private nextRequest(): 'stop' | 'wait' | number {
    const { status } = this;
    if (this.controller.signal.aborted || this.fatal !== undefined) return 'stop';
    if (status.accepted >= this.opts.count || status.requests.started >= this.maxRequests) return 'stop';
    if (status.accepted + status.inFlight * this.yieldEstimate() >= this.opts.count) return 'wait';
    status.requests.started++;
    status.inFlight++;
    return this.nextIndex++;
  }

  private async worker(): Promise<void> {
    const { status, opts } = this;
    for (;;) {
      const next = this.nextRequest();
      if (next === 'stop') return;
      if (next === 'wait') {
        await this.notifier.changed();
        continue;
      }
      const index = next;
      const prompt = buildPrompt(opts.prompt, opts.seed, index);
      const estimated = Math.ceil(prompt.text.length * 1.5) + this.completionTokensAvg;
      let result: RequestResult;
      try {
        result = await this.client.request(prompt.text, opts.retry, this.limiter, estimated, this.controller.signal, (f) => this.attemptFailed(f));
      } catch (e) {
        this.fatal = e;
        this.controller.abort();
        status.inFlight--;
        this.notifier.notify();
        return;
      }
      const lines = emptyLines();
      const time = new Date().toISOString();
      if (result.completion) this.recordCompletion(index, result, lines, time);
      // a request cut short by Ctrl-C is not a failure; one cut short by giving up is, with the attempts it made
      else if (result.failures.length > 0 && (!this.controller.signal.aborted || this.fatal instanceof TooManyFailuresError))
        this.recordFailure(index, prompt.text, result, lines, time);
      status.inFlight--;
      // The decision is made; the write joins the next group commit. The worker does not wait for the
      // fsync before its next request (the run waits for all writes before it returns).
      const written = this.commits.add(lines).catch((e) => {
        if (this.fatal === undefined) this.fatal = e;
        this.controller.abort();
      });
      this.notifier.notify();
      opts.onStatus?.(this.snapshot());
      // backpressure: a disk slower than the replies makes workers wait instead of piling up lines
      if (this.commits.pendingChars > MAX_PENDING_CHARS) await written;
    }
  }

  snapshot(): CrawlStatus {
    const { status, opts } = this;
    status.elapsedMs = Date.now() - this.started;
    status.usage.costUsd = cost(status.usage.promptTokens, status.usage.completionTokens, opts.priceIn, opts.priceOut);
    status.usageAllRuns.costUsd = cost(status.usageAllRuns.promptTokens, status.usageAllRuns.completionTokens, opts.priceIn, opts.priceOut);
    return structuredClone(status);
  }

  /** Runs the workers until --count, --max-requests, an abort or a fatal error; then waits for the writes. */
  async run(): Promise<void> {
    try {
      if (this.status.accepted < this.opts.count) {
        await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency) }, () => this.worker()));
      }
      await this.commits.drained();
    } finally {
      this.opts.signal?.removeEventListener('abort', this.onOuterAbort);
      await this.commits.settled();
      await this.store.close();
    }
  }

  summary(): CrawlSummary {
    const s = this.snapshot();
    const complete = s.accepted >= this.opts.count;
    const paths = this.store.paths;
    return {
      ...s,
      complete,
      stopReason: complete ? 'count-reached' : this.opts.signal?.aborted ? 'aborted' : 'max-requests',
      files: { out: paths.out, rejects: paths.rejects, failures: paths.failures, journal: paths.journal },
    };
  }
}

export async function crawl(opts: CrawlOptions): Promise<CrawlSummary> {
  validateCrawlOptions(opts);
  const run = await CrawlRun.open(opts);
  await run.run();
  if (run.fatal !== undefined) throw run.fatal;
  return run.summary();
}
