// The one seam for time and chance: production code never calls Date.now,
// performance.now, setTimeout or Math.random directly, so tests can drive time
// deterministically. Two clocks, because the wall clock can step (NTP, a VM
// resumed): anything that waits or measures uses `monotonic`; `now` only stamps.
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Wall-clock milliseconds since the epoch: for timestamps only, never for intervals. */
  now(): number;
  /** Milliseconds from an arbitrary origin that never steps: for intervals, deadlines, ages. */
  monotonic(): number;
  /** Resolves after `ms` of monotonic time; rejects with the signal's reason when aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1). */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  // A negative delay is a computation gone wrong at the caller (fix it there); Node would
  // also print a TimeoutNegativeWarning in plain text among JSON logs, so it waits 0 here.
  // Rejects with the signal's own reason (not a fresh AbortError per sleep, which
  // timers/promises makes): the fleet wakes thousands of sleeping loops at once.
  sleep: (ms, signal) => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const sleep = new Sleep(resolve, reject, signal);
    sleep.timer = setTimeout(wakeUp, Math.max(0, ms), sleep);
    signal?.addEventListener('abort', sleep, { once: true });
    return promise;
  },
  random: () => Math.random(),
};

/**
 * One pending sleep: its timer and the abort listener that cancels it. An object with
 * methods, not closures: the fleet keeps thousands asleep at once, and the build's
 * keepNames gives every named closure its own `name` property and hidden class.
 */
class Sleep {
  timer: ReturnType<typeof setTimeout> | undefined;
  private readonly resolve: () => void;
  private readonly reject: (reason: unknown) => void;
  private readonly signal: AbortSignal | undefined;

  constructor(resolve: () => void, reject: (reason: unknown) => void, signal: AbortSignal | undefined) {
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
  }

  /** The signal aborted first (EventTarget calls a listener object's handleEvent). */
  handleEvent(): void {
    clearTimeout(this.timer);
    this.reject(this.signal?.reason);
  }

  woke(): void {
    this.signal?.removeEventListener('abort', this);
    this.resolve();
  }
}

function wakeUp(sleep: Sleep): void {
  sleep.woke();
}

const WAITED = new Error('the bounded wait is over');

/**
 * Waits for `work` at most `ms` of monotonic time, or until `stop` aborts — whichever
 * comes first; never rejects, and leaves no timer behind (a bounded wait at start-up).
 */
export async function waitAtMost(
  clock: Clock,
  work: Promise<unknown>,
  ms: number,
  stop?: AbortSignal,
): Promise<void> {
  const timer = new AbortController();
  const signal = stop ? AbortSignal.any([timer.signal, stop]) : timer.signal;
  try {
    await Promise.race([work.catch(() => undefined), clock.sleep(ms, signal).catch(() => undefined)]);
  } finally {
    timer.abort(WAITED);
  }
}
