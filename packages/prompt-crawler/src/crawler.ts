/**
 * The crawl loop: `concurrency` workers each take the next request index, build its prompt, send it
 * (rate-limited, retried), and hand the reply to a single committer. The committer decides
 * synchronously, in arrival order, which items are kept (parse → filters → exact dedupe → optional
 * ROUGE-L), so the accepted count is always exact and never passes --count; the file writes of all
 * replies that arrive while a write is in flight are grouped into one append + fsync per file, in
 * order; the run returns only after every write is synced.
 *
 * Resume: everything in <out> is loaded first (dedupe set and ROUGE index rebuilt from it), request
 * numbering continues after the highest index in the journal/failures, and the run stops at exactly
 * --count items in <out>.
 */
import { setMaxListeners } from 'node:events';
import { ChatClient, type AttemptFailure, type RetryPolicy } from './client.js';
import { TooManyFailuresError } from './errors.js';
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
  /** abort when this many requests in a row fail permanently */
  maxConsecutiveFailures?: number;
  signal?: AbortSignal;
  onStatus?: (s: CrawlStatus) => void;
  /** override fetch (tests) */
  fetch?: typeof fetch;
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

function emptyLines() {
  return { items: [] as string[], rejects: [] as string[], failures: [] as string[], journal: [] as string[] };
}

function cost(promptTokens: number, completionTokens: number, priceIn?: number, priceOut?: number): number | undefined {
  if (priceIn === undefined && priceOut === undefined) return undefined;
  return (promptTokens / 1e6) * (priceIn ?? 0) + (completionTokens / 1e6) * (priceOut ?? 0);
}

export async function crawl(opts: CrawlOptions): Promise<CrawlSummary> {
  const started = Date.now();
  const redactor = new Redactor([opts.apiKey]);
  const filter = new ItemFilter(opts.filters);
  const seen = new Set<string>();
  const rouge = opts.rougeThreshold !== undefined ? new RougeLIndex(opts.rougeThreshold) : undefined;
  // what earlier runs kept: streamed into the dedupe set and the ROUGE-L index (add only: already deduped)
  const { store, itemCount, previous, torn } = await OutputStore.open(opts.out, (it) => {
    seen.add(normalizeInstruction(it.instruction));
    rouge?.add(rouge.tokenIds(it.instruction));
  });
  const prevPrompt = previous.promptTokens;
  const prevCompletion = previous.completionTokens;
  const maxIndex = previous.maxRequestIndex;

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
    usageAllRuns: { promptTokens: prevPrompt, completionTokens: prevCompletion },
    tornLinesRepaired: torn.length,
    elapsedMs: 0,
  };
  const reject = (lines: string[], r: RejectRecord) => {
    status.items.rejected[r.reason] = (status.items.rejected[r.reason] ?? 0) + 1;
    lines.push(redactor.redact(JSON.stringify(r)) + '\n');
  };
  for (const t of torn) if (t.file === opts.out) status.items.rejected['torn-line-on-resume'] = (status.items.rejected['torn-line-on-resume'] ?? 0) + 1;

  // ---- group commit -------------------------------------------------------------------------
  let pending = emptyLines();
  let scheduled: Promise<void> | undefined;
  let tail: Promise<void> = Promise.resolve();
  const commit = (lines: ReturnType<typeof emptyLines>): Promise<void> => {
    pending.items.push(...lines.items);
    pending.rejects.push(...lines.rejects);
    pending.failures.push(...lines.failures);
    pending.journal.push(...lines.journal);
    if (!scheduled) {
      scheduled = tail.then(() => {
        const batch = pending;
        pending = emptyLines();
        scheduled = undefined;
        return store.append(batch);
      });
      tail = scheduled.catch(() => undefined);
    }
    return scheduled;
  };

  // ---- deciding what to keep (synchronous, in arrival order) ----------------------------------
  const acceptItems = (index: number, parsedItems: Item[], lines: ReturnType<typeof emptyLines>): number => {
    let kept = 0;
    for (const raw of parsedItems) {
      const item: Item = {
        instruction: redactor.redact(raw.instruction),
        input: redactor.redact(raw.input),
        output: redactor.redact(raw.output),
      };
      const why = filter.check(item);
      if (why) {
        reject(lines.rejects, { request: index, reason: why, item });
        continue;
      }
      const key = normalizeInstruction(item.instruction);
      if (seen.has(key)) {
        reject(lines.rejects, { request: index, reason: 'duplicate', item });
        continue;
      }
      let ids: Int32Array | undefined;
      if (rouge) {
        ids = rouge.tokenIds(item.instruction);
        const sim = rouge.findSimilar(ids);
        if (sim) {
          reject(lines.rejects, { request: index, reason: 'rouge-similar', item, score: Number(sim.score.toFixed(4)) });
          continue;
        }
      }
      if (status.accepted >= opts.count) {
        reject(lines.rejects, { request: index, reason: 'surplus', item });
        continue;
      }
      seen.add(key);
      if (rouge && ids) rouge.add(ids);
      status.accepted++;
      status.acceptedThisRun++;
      kept++;
      lines.items.push(redactor.redact(JSON.stringify(item)) + '\n');
    }
    return kept;
  };

  // ---- workers ------------------------------------------------------------------------------
  const client = new ChatClient(
    {
      baseURL: opts.baseURL,
      apiKey: opts.apiKey,
      model: opts.model,
      timeoutMs: opts.timeoutMs,
      maxTokens: opts.maxTokens,
      temperature: opts.temperature,
      structured: opts.structured,
      fetch: opts.fetch,
    },
    redactor,
  );
  const limiter = new RateLimiter({ rpm: opts.rpm, tpm: opts.tpm });
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // every in-flight request listens to it
  const onOuterAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const maxRequests = opts.maxRequests ?? Number.POSITIVE_INFINITY;
  const maxConsecutive = opts.maxConsecutiveFailures ?? 20;
  let nextIndex = maxIndex + 1;
  let consecutiveFailures = 0;
  let fatal: unknown;
  let completionTokensAvg = opts.maxTokens ?? 2048;
  let waiters: Array<() => void> = [];
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const changed = () => new Promise<void>((r) => waiters.push(r));
  const yieldEstimate = () =>
    status.requests.succeeded > 0 ? Math.max(0.5, status.acceptedThisRun / status.requests.succeeded) : opts.prompt.itemsPerRequest;

  const worker = async (): Promise<void> => {
    for (;;) {
      if (controller.signal.aborted || fatal !== undefined) return;
      if (status.accepted >= opts.count || status.requests.started >= maxRequests) return;
      if (status.accepted + status.inFlight * yieldEstimate() >= opts.count) {
        await changed(); // in-flight replies will probably finish the job; wait and re-check
        continue;
      }
      const index = nextIndex++;
      status.requests.started++;
      status.inFlight++;
      const prompt = buildPrompt(opts.prompt, opts.seed, index);
      const estimated = Math.ceil(prompt.text.length * 1.5) + completionTokensAvg;
      let result: Awaited<ReturnType<ChatClient['request']>>;
      try {
        result = await client.request(prompt.text, opts.retry, limiter, estimated, controller.signal, (f: AttemptFailure) => {
          status.attempts.total++;
          status.attempts.failed++;
          void f;
        });
      } catch (e) {
        fatal = e;
        controller.abort();
        status.inFlight--;
        notify();
        return;
      }
      const lines = emptyLines();
      const time = new Date().toISOString();
      if (result.completion) {
        const c = result.completion;
        status.attempts.total++;
        status.requests.succeeded++;
        consecutiveFailures = 0;
        status.usage.promptTokens += c.promptTokens;
        status.usage.completionTokens += c.completionTokens;
        status.usageAllRuns.promptTokens += c.promptTokens;
        status.usageAllRuns.completionTokens += c.completionTokens;
        if (c.completionTokens > 0) completionTokensAvg = 0.9 * completionTokensAvg + 0.1 * c.completionTokens;
        const parsed = parseReply(c.text, { finishReason: c.finishReason });
        status.items.parsed += parsed.items.length;
        for (const r of parsed.rejects) reject(lines.rejects, { request: index, reason: r.reason, raw: r.raw.slice(0, 4000) });
        const kept = acceptItems(index, parsed.items, lines);
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
        lines.journal.push(redactor.redact(JSON.stringify(j)) + '\n');
      } else if (result.failures.length > 0 && !controller.signal.aborted) {
        status.requests.failed++;
        consecutiveFailures++;
        const f: FailureRecord = {
          request: index,
          prompt: prompt.text,
          attempts: result.failures.map(({ attempt, kind, status: st, message }) => ({ attempt, kind, status: st, message })),
          time,
        };
        lines.failures.push(redactor.redact(JSON.stringify(f)) + '\n');
        if (consecutiveFailures >= maxConsecutive && fatal === undefined) {
          const last = result.failures[result.failures.length - 1];
          fatal = new TooManyFailuresError(
            `${consecutiveFailures} requests in a row failed after all retries (last: ${last.kind}${last.status ? ` ${last.status}` : ''}: ${last.message}); check the server, --base-url and --model. Details in ${store.paths.failures}`,
          );
          controller.abort();
        }
      }
      status.inFlight--;
      // The decision is made; the write joins the next group commit. The worker does not wait for the
      // fsync before its next request (the run waits for all writes before it returns).
      commit(lines).catch((e) => {
        if (fatal === undefined) fatal = e;
        controller.abort();
      });
      notify();
      opts.onStatus?.(snapshot());
    }
  };

  const snapshot = (): CrawlStatus => {
    status.elapsedMs = Date.now() - started;
    status.usage.costUsd = cost(status.usage.promptTokens, status.usage.completionTokens, opts.priceIn, opts.priceOut);
    status.usageAllRuns.costUsd = cost(status.usageAllRuns.promptTokens, status.usageAllRuns.completionTokens, opts.priceIn, opts.priceOut);
    return structuredClone(status);
  };

  try {
    if (status.accepted < opts.count) {
      await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, () => worker()));
    }
    await tail;
    if (scheduled) await scheduled;
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
    await tail;
    await store.close();
  }
  if (fatal !== undefined) throw fatal;
  const s = snapshot();
  const complete = s.accepted >= opts.count;
  return {
    ...s,
    complete,
    stopReason: complete ? 'count-reached' : opts.signal?.aborted ? 'aborted' : 'max-requests',
    files: { out: store.paths.out, rejects: store.paths.rejects, failures: store.paths.failures, journal: store.paths.journal },
  };
}
