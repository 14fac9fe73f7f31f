// One-off reads (the owning Job, the node) retried until they are answered: success,
// or a refusal (403/404) that no retry will change (contract rule 1). Anything else —
// the API down, slow, or failing — is retried with capped backoff, for as long as the
// caller's signal allows: a slow start must not lose the Job or the node for good.
//
// Not p-retry, though "retry until answered" is its shape: its waits are its own
// setTimeouts, which the Clock seam (and so the fake clock of the tests) cannot drive,
// and its jitter (×1–2) is not the Kubernetes side's one backoff (backoff.ts, ±50%,
// shared with the watch). What is left is the short loop below.
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

/** The read's result, or the KubeError of a final refusal (403 or 404). */
export async function readUntilAnswered<T>(
  read: (call: KubeCall) => Promise<T>,
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
      if (failures === STUCK_AFTER_FAILURES) options.onStuck?.(error, failures);
      await clock.sleep(kubeBackoffMs(failures, clock.random()), signal);
    }
  }
}
