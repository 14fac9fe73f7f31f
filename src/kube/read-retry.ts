// One-off reads (the owning Job, the node) retried until they are answered: success,
// or a refusal (403/404) that no retry will change (contract rule 1). Anything else —
// the API down, slow, or failing — is retried with capped backoff, for as long as the
// caller's signal allows: a slow start must not lose the Job or the node for good.
//
// "Retry until answered" is p-retry's shape, so p-retry runs it. Its own waits are set
// to zero and the backoff is slept in `onFailedAttempt` on the Clock, so the fake clock
// drives it in tests and the delays are the Kubernetes side's one backoff (backoff.ts,
// shared with the watch), not p-retry's ×1–2 jitter.
import pRetry from 'p-retry';
import type { Clock } from '../clock.ts';
import { isRefusal, type KubeCall, KubeError } from './api.ts';
import { kubeBackoffMs } from './backoff.ts';

/** After this many failed attempts in a row a read is reported stuck, once; it keeps trying. */
export const STUCK_AFTER_FAILURES = 3;

export interface ReadRetryOptions {
  clock: Clock;
  /** Stops the retrying; the promise then rejects with the signal's reason. */
  signal: AbortSignal;
  /** Bound on each attempt. */
  timeoutMs: number;
  /**
   * Told once, after STUCK_AFTER_FAILURES failed attempts (a Job read failing with 500
   * forever must not be silent), with the last error.
   */
  onStuck?(error: KubeError, failures: number): void;
}

/** A bad day of the API, worth another try; a refusal is final and anything else is a bug. */
const retryable = (error: unknown): error is KubeError => error instanceof KubeError && !isRefusal(error);

/** The read's result, or the KubeError of a final refusal (403 or 404). */
export async function readUntilAnswered<T>(
  read: (call: KubeCall) => Promise<T>,
  options: ReadRetryOptions,
): Promise<T | KubeError> {
  const { clock, signal, timeoutMs } = options;
  try {
    return await pRetry(() => read({ timeoutMs, signal }), {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: 0, // the wait is ours, below
      signal,
      shouldRetry: ({ error }) => retryable(error),
      onFailedAttempt: async ({ error, attemptNumber }) => {
        if (!retryable(error)) return;
        if (attemptNumber === STUCK_AFTER_FAILURES) options.onStuck?.(error, attemptNumber);
        await clock.sleep(kubeBackoffMs(attemptNumber, clock.random()), signal);
      },
    });
  } catch (error) {
    signal.throwIfAborted();
    if (error instanceof KubeError && isRefusal(error)) return error;
    throw error;
  }
}
