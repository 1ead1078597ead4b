/**
 * Client-side limits on requests/min and tokens/min (token buckets refilled continuously), plus a
 * global pause that a 429's Retry-After imposes on every worker, not just the one that got it.
 * Token cost is not known before a request finishes, so `acquire` takes an estimate and `settle`
 * charges (or refunds) the difference once the server reports usage.
 */
export interface RateLimits {
  rpm?: number;
  tpm?: number;
}

class Bucket {
  private level: number;
  private last: number;
  constructor(
    private readonly perMs: number,
    readonly capacity: number,
    now: number,
  ) {
    this.level = capacity;
    this.last = now;
  }
  private refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + (now - this.last) * this.perMs);
    this.last = now;
  }
  /** ms until `n` is available (0 = available now) */
  waitFor(n: number, now: number): number {
    this.refill(now);
    const need = Math.min(n, this.capacity);
    return this.level >= need ? 0 : Math.ceil((need - this.level) / this.perMs);
  }
  take(n: number, now: number): void {
    this.refill(now);
    this.level -= n;
  }
  adjust(delta: number): void {
    this.level = Math.min(this.capacity, this.level - delta);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class RateLimiter {
  private readonly requests?: Bucket;
  private readonly tokens?: Bucket;
  private pausedUntil = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    limits: RateLimits,
    private readonly now: () => number = Date.now,
  ) {
    const t = now();
    // burst capacity: a tenth of a minute's allowance, so a cold start does not fire a minute's worth at once
    if (limits.rpm) this.requests = new Bucket(limits.rpm / 60_000, Math.max(1, limits.rpm / 10), t);
    if (limits.tpm) this.tokens = new Bucket(limits.tpm / 60_000, Math.max(1, limits.tpm / 10), t);
  }

  /** Stop everyone from starting requests until `untilMs` (epoch ms). */
  pauseUntil(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  /** Waits (FIFO) until one request of ~estimatedTokens may start. */
  acquire(estimatedTokens: number): Promise<void> {
    const turn = this.queue.then(async () => {
      for (;;) {
        const now = this.now();
        const wait = Math.max(this.pausedUntil - now, this.requests?.waitFor(1, now) ?? 0, this.tokens?.waitFor(estimatedTokens, now) ?? 0);
        if (wait <= 0) break;
        await sleep(Math.min(wait, 1000));
      }
      const now = this.now();
      this.requests?.take(1, now);
      this.tokens?.take(estimatedTokens, now);
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Corrects the token bucket once the real usage of a request is known. */
  settle(estimatedTokens: number, actualTokens: number): void {
    this.tokens?.adjust(actualTokens - estimatedTokens);
  }
}
