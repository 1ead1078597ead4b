/**
 * One chat-completion request through the `openai` package, with this crawler's own retry loop (the
 * package's retries are off so that every attempt is counted and Retry-After is shared across workers):
 * exponential backoff with full jitter, Retry-After / retry-after-ms honoured on 429 and 5xx up to the
 * user's --retry-max-ms (a longer server wait is capped there and reported through `onNotice`, never
 * waited out), timeouts and connection errors retried. The per-attempt timeout is our own and covers
 * the whole attempt, reading the body included (the SDK's `timeout` stops at the response headers, so a
 * server that sends headers and then stalls would hang it forever). A reply is read through a counting
 * stream and cut at `maxReplyBytes` (a Content-Length above it is refused before reading): the SDK
 * buffers whole bodies, so without the cap a server streaming without end would take all memory; the
 * attempt then fails as `too-large` and is not retried. Errors are described by `describeError`, which
 * copies only status, kind and message — never the error object, whose fields include response headers.
 */
import OpenAI from 'openai';
import { CrawlerError, FatalApiError } from './errors.js';
import { ITEMS_JSON_SCHEMA } from './prompt.js';
import type { RateLimiter } from './ratelimit.js';
import type { Redactor } from './redact.js';

export interface ClientOptions {
  baseURL?: string;
  apiKey: string;
  model: string;
  timeoutMs: number;
  maxTokens?: number;
  temperature?: number;
  /** ask for JSON-schema structured output; turned off for the rest of the run if the server rejects it */
  structured: boolean;
  /** extra fetch implementation (tests) */
  fetch?: typeof fetch;
  /** things the user should hear about (a capped Retry-After); once per kind per client */
  onNotice?: (line: string) => void;
  /** the largest reply body read (error bodies included); a larger one fails the attempt */
  maxReplyBytes: number;
}

/** An attempt that outlived ClientOptions.timeoutMs (headers or body); recorded as a failed attempt, never thrown to the caller. */
class AttemptTimeoutError extends CrawlerError {
  constructor(message: string) {
    super(message, 'timeout');
  }
}

/** A reply body (or its Content-Length) larger than ClientOptions.maxReplyBytes; recorded as a failed attempt. */
class ReplyTooLargeError extends CrawlerError {
  constructor(maxBytes: number) {
    super(`reply larger than ${formatBytes(maxBytes)} (--max-reply-mb); the request was aborted`, 'too-large');
  }
}

/** What the fetch wrapper learned about one attempt; passed to it through the SDK's fetchOptions. */
interface AttemptState {
  tooLarge: boolean;
}
const ATTEMPT_KEY = 'cllamaAttempt';

/** Bytes in binary units for messages: 8 MiB, 512 KiB, 300 B. */
export function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${Number((n / (1 << 20)).toFixed(2))} MiB`;
  if (n >= 1 << 10) return `${Number((n / (1 << 10)).toFixed(2))} KiB`;
  return `${n} B`;
}

/** Responses that may not carry a body (new Response refuses one for them). */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/**
 * A fetch whose response bodies stop at `maxBytes`: a Content-Length above it is refused before the
 * body is read, and a body that grows past it (no Content-Length, or a lying one) is cancelled — the
 * connection closed — as soon as the cap is passed. Either way the attempt's state says why.
 */
export function cappedFetch(inner: typeof fetch, maxBytes: number): typeof fetch {
  return async (input, init) => {
    const state = (init as Record<string, unknown> | undefined)?.[ATTEMPT_KEY] as AttemptState | undefined;
    const res = await inner(input, init);
    const tooLarge = () => {
      if (state) state.tooLarge = true;
      return new ReplyTooLargeError(maxBytes);
    };
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge();
    }
    if (!res.body || NULL_BODY_STATUS.has(res.status)) return res;
    const reader = res.body.getReader();
    let seen = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        seen += value.byteLength;
        if (seen > maxBytes) {
          const err = tooLarge();
          await reader.cancel(err).catch(() => undefined);
          controller.error(err);
          return;
        }
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/**
 * Refuses an API key that no HTTP header can carry — a control character (a newline or escape code
 * pasted inside it) or a character outside ASCII (a curly quote) — instead of letting every request
 * fail as a "connection error". Leading and trailing whitespace is not counted (the key is sent
 * trimmed). Returns the problem, or undefined; the key itself is never part of the message.
 */
export function apiKeyProblem(apiKey: string): string | undefined {
  const key = apiKey.trim();
  if (/[\x00-\x1f\x7f]/.test(key)) return 'a control character (a newline, tab or escape code pasted into it)';
  if (/[^\x00-\x7f]/.test(key)) return 'a character outside ASCII (a curly quote or other text pasted into it)';
  return undefined;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface Completion {
  text: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
}

export type ErrorKind = 'http' | 'timeout' | 'connection' | 'bad-response' | 'too-large' | 'aborted';

export interface ErrorInfo {
  kind: ErrorKind;
  status?: number;
  message: string;
}

export function describeError(err: unknown, redactor: Redactor): ErrorInfo {
  const clip = (s: string) => redactor.redact(s.length > 300 ? `${s.slice(0, 300)}…` : s);
  if (err instanceof AttemptTimeoutError) return { kind: 'timeout', message: err.message };
  if (err instanceof ReplyTooLargeError) return { kind: 'too-large', message: err.message };
  if (err instanceof OpenAI.APIUserAbortError) return { kind: 'aborted', message: 'request aborted' };
  if (err instanceof OpenAI.APIConnectionTimeoutError) return { kind: 'timeout', message: 'request timed out' };
  if (err instanceof OpenAI.APIConnectionError) {
    // fetch's "fetch failed" wraps the socket's error: say the innermost one (ECONNRESET, other side closed)
    let detail = err.message;
    let cause = (err as { cause?: unknown }).cause as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
    for (let depth = 0; cause && depth < 4; depth++, cause = cause.cause as typeof cause) {
      const code = typeof cause.code === 'string' ? cause.code : undefined;
      const message = typeof cause.message === 'string' ? cause.message : undefined;
      if (code || message) detail = code && message && !message.includes(code) ? `${message} (${code})` : (message ?? code ?? detail);
    }
    return { kind: 'connection', message: clip(`connection error: ${detail}`) };
  }
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    return { kind: 'http', status: err.status, message: clip(err.message) };
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { kind: 'bad-response', message: clip(message) };
}

/** Milliseconds the server asked us to wait (retry-after-ms, or Retry-After in seconds or as a date). */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface AttemptFailure extends ErrorInfo {
  attempt: number;
  retryable: boolean;
}

function formatMs(ms: number): string {
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  if (ms < 2 * 3600_000) return `${Math.round(ms / 1000)} s`;
  return `${(ms / 3600_000).toFixed(1)} h`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

export class ChatClient {
  private readonly client: OpenAI;
  structured: boolean;
  private cappedNoticeGiven = false;

  constructor(
    private readonly opts: ClientOptions,
    private readonly redactor: Redactor,
  ) {
    this.structured = opts.structured;
    this.client = new OpenAI({
      apiKey: opts.apiKey.trim(),
      baseURL: opts.baseURL,
      timeout: opts.timeoutMs, // headers only; once() bounds the whole attempt
      maxRetries: 0,
      logLevel: 'off',
      fetch: cappedFetch(opts.fetch ?? fetch, opts.maxReplyBytes),
    });
  }

  private async once(prompt: string, signal?: AbortSignal): Promise<Completion> {
    const params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
      model: this.opts.model,
      messages: [{ role: 'user', content: prompt }],
      ...(this.opts.maxTokens ? { max_tokens: this.opts.maxTokens } : {}),
      ...(this.opts.temperature !== undefined ? { temperature: this.opts.temperature } : {}),
      ...(this.structured ? { response_format: { type: 'json_schema', json_schema: ITEMS_JSON_SCHEMA } } : {}),
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
    // one signal for this attempt: the caller's abort, or our timeout (which also cuts a stalled body)
    const attempt = new AbortController();
    let timedOut = false;
    const onAbort = () => attempt.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) attempt.abort();
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, this.opts.timeoutMs);
    const state: AttemptState = { tooLarge: false };
    let res: OpenAI.Chat.ChatCompletion;
    try {
      // the state object travels in fetchOptions to cappedFetch, which marks an over-size reply on it
      const fetchOptions = { [ATTEMPT_KEY]: state } as OpenAI.RequestOptions['fetchOptions'];
      res = await this.client.chat.completions.create(params, { signal: attempt.signal, fetchOptions });
    } catch (e) {
      if (state.tooLarge) throw new ReplyTooLargeError(this.opts.maxReplyBytes);
      if (timedOut) throw new AttemptTimeoutError(`no complete reply within ${this.opts.timeoutMs} ms (--timeout)`);
      throw e;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    const choice = res?.choices?.[0];
    if (!choice || typeof choice.message?.content !== 'string') {
      throw new Error('reply has no choices[0].message.content');
    }
    return {
      text: choice.message.content,
      finishReason: choice.finish_reason ?? null,
      promptTokens: res.usage?.prompt_tokens ?? 0,
      completionTokens: res.usage?.completion_tokens ?? 0,
    };
  }

  /** The server's Retry-After, capped at the user's --retry-max-ms; the first cap is said out loud. */
  private boundServerWait(serverWaitMs: number, policy: RetryPolicy): number {
    if (serverWaitMs <= policy.maxDelayMs) return serverWaitMs;
    if (!this.cappedNoticeGiven) {
      this.cappedNoticeGiven = true;
      this.opts.onNotice?.(
        `the server asked to wait ${formatMs(serverWaitMs)} (Retry-After), longer than --retry-max-ms (${policy.maxDelayMs} ms); ` +
          `waiting ${policy.maxDelayMs} ms instead (raise --retry-max-ms to honour it; later caps are not reported)`,
      );
    }
    return policy.maxDelayMs;
  }

  /**
   * Sends `prompt` until it succeeds or the policy gives up. Returns the completion and the failed
   * attempts before it, or throws FatalApiError (401/403/404: stop the whole run). A request that
   * exhausts its attempts returns { completion: undefined, failures }.
   */
  async request(
    prompt: string,
    policy: RetryPolicy,
    limiter: RateLimiter,
    estimatedTokens: number,
    signal?: AbortSignal,
    onAttemptFailed?: (f: AttemptFailure) => void,
  ): Promise<{ completion?: Completion; failures: AttemptFailure[] }> {
    const failures: AttemptFailure[] = [];
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      if (signal?.aborted) break;
      await limiter.acquire(estimatedTokens);
      try {
        const completion = await this.once(prompt, signal);
        limiter.settle(estimatedTokens, completion.promptTokens + completion.completionTokens);
        return { completion, failures };
      } catch (err) {
        limiter.settle(estimatedTokens, 0);
        const info = describeError(err, this.redactor);
        if (info.kind === 'aborted' || signal?.aborted) break;
        const status = info.status;
        if (status === 401 || status === 403 || status === 404) {
          const hint =
            status === 401
              ? 'the server rejected the API key: check OPENAI_API_KEY'
              : status === 403
                ? 'the key is not allowed to use this model or endpoint'
                : 'no such endpoint or model: check --base-url and --model';
          throw new FatalApiError(`${hint} (HTTP ${status}: ${info.message})`, status);
        }
        // an over-size reply is not retried: the same prompt to the same server would most likely do it again
        let retryable = (info.kind !== 'http' && info.kind !== 'too-large') || status === 408 || status === 409 || status === 429 || (status ?? 0) >= 500;
        if (status === 400 && this.structured) {
          // most likely the server does not support response_format json_schema: fall back to free text
          this.structured = false;
          retryable = true;
        }
        const failure: AttemptFailure = { ...info, attempt, retryable };
        failures.push(failure);
        onAttemptFailed?.(failure);
        if (!retryable || attempt === policy.maxAttempts) break;
        const headers = err instanceof OpenAI.APIError ? (err.headers as Headers | undefined) : undefined;
        const serverWait = retryAfterMs(headers);
        const backoff = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
        if (serverWait !== undefined) {
          const wait = this.boundServerWait(serverWait, policy);
          // the server's wait applies to everyone sharing the key
          limiter.pauseUntil(Date.now() + wait);
          await sleep(wait, signal);
        } else await sleep(backoff, signal);
      }
    }
    return { failures };
  }
}
