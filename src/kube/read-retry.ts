// One-off reads (the owning Job, the node) retried until they are answered: success,
// or a refusal (403/404) that no retry will change (contract rule 1). Anything else —
// the API down, slow, or failing — is retried with capped backoff, for as long as the
// caller's signal allows: a slow start must not lose the Job or the node for good.
import type { Clock } from '../clock.ts';
import { isRefusal, KubeError } from './api.ts';
import { kubeBackoffMs } from './backoff.ts';

export interface ReadRetryOptions {
  clock: Clock;
  /** Stops the retrying; the promise then rejects with the signal's reason. */
  signal: AbortSignal;
  /** Bound on each attempt. */
  timeoutMs: number;
  /** Called after each failed attempt that will be retried, with the wait before the next. */
  onRetry?(error: KubeError, delayMs: number): void;
}

/** The read's result, or the KubeError of a final refusal (403 or 404). */
export async function readUntilAnswered<T>(
  read: (call: { timeoutMs: number; signal: AbortSignal }) => Promise<T>,
  options: ReadRetryOptions,
): Promise<T | KubeError> {
  const { clock, signal, timeoutMs } = options;
  for (let failures = 1; ; failures++) {
    signal.throwIfAborted();
    try {
      return await read({ timeoutMs, signal });
    } catch (error) {
      signal.throwIfAborted();
      if (!(error instanceof KubeError)) throw error; // a bug, not a bad day of the API
      if (isRefusal(error)) return error;
      const delayMs = kubeBackoffMs(failures, clock.random());
      options.onRetry?.(error, delayMs);
      await clock.sleep(delayMs, signal);
    }
  }
}
