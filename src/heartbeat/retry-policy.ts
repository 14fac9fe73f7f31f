// Contract policy rules 5 and 13 as a pure function: given a failed attempt, retry
// after how long, or stop. No I/O, no clock: the loop passes `now` (monotonic) and a
// random number, and carries out what this decides.

/** What the loop knows of a failed attempt (the TES client's TesError fits). */
export interface AttemptFailure {
  /** Network error, timeout, 408, 425, 429, 500, 502, 503, 504. */
  retryable: boolean;
  status?: number;
  /** Parsed Retry-After, already relative to now (an HTTP date was turned into a delay once). */
  retryAfterMs?: number;
}

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 30_000;
/** A Retry-After never holds heartbeats back longer than this. */
export const RETRY_AFTER_HOLD_CAP_MS = 5 * 60_000;

export interface RetryContext {
  failure: AttemptFailure;
  /** Failed attempts of this heartbeat so far, this one included (1 after the first). */
  failedAttempts: number;
  /** Monotonic milliseconds, like `retryUntil`. */
  now: number;
  /** No attempt may start at or after this: the next periodic heartbeat, or the final deadline. */
  retryUntil: number;
  final: boolean;
  /** Whether this heartbeat already used its one immediate retry after a 401. */
  unauthorizedRetried: boolean;
  /** Uniform in [0, 1), for full jitter. */
  random: number;
}

export type RetryDecision =
  | { retry: true; delayMs: number; reloadToken?: true }
  | {
      retry: false;
      why: 'not-retryable' | 'out-of-time';
      /** Hold every later heartbeat but the final one back until then (a long Retry-After). */
      holdUntil?: number;
    };

/** Full jitter: uniform in [0, min(cap, base·2^(n-1))). */
export function backoffMs(failedAttempts: number, random: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failedAttempts - 1));
  return Math.floor(random * ceiling);
}

export function retryDecision(ctx: RetryContext): RetryDecision {
  const { failure } = ctx;
  if (failure.status === 401 && !ctx.unauthorizedRetried) {
    return { retry: true, delayMs: 0, reloadToken: true };
  }
  if (!failure.retryable) return { retry: false, why: 'not-retryable' };

  const retryAfter = failure.retryAfterMs;
  // Rule 13: Retry-After is a floor. `Retry-After: 0`, or a date already past by the
  // TES's clock, must never make a pod retry faster than its backoff.
  const delayMs = Math.max(retryAfter ?? 0, backoffMs(ctx.failedAttempts, ctx.random));
  if (ctx.now + delayMs < ctx.retryUntil) return { retry: true, delayMs };

  if (retryAfter !== undefined && !ctx.final) {
    return {
      retry: false,
      why: 'out-of-time',
      holdUntil: ctx.now + Math.min(retryAfter, RETRY_AFTER_HOLD_CAP_MS),
    };
  }
  return { retry: false, why: 'out-of-time' };
}
