// A Clock whose time moves only when a test says so (`advance` moves both the wall
// and the monotonic clock; `stepWall` the wall clock alone). Sleepers are resolved in
// deadline order; I/O still runs in real time, so tests pair `advance` with
// `waitFor` on observable effects.
import type { Clock } from '../../src/clock.ts';

interface Sleeper {
  at: number;
  ms: number;
  resolve(): void;
}

export class FakeClock implements Clock {
  /** Monotonic time: sleepers are due on it. */
  private time: number;
  /** The wall clock is monotonic time plus this; `stepWall` moves it alone. */
  private wallOffset = 0;
  private readonly sleepers: Sleeper[] = [];
  /** Every sleep ever requested, in ms, in order: for asserting exact delays. */
  readonly requestedSleeps: number[] = [];
  private randomValues: number[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.time = start;
  }

  now(): number {
    return this.time + this.wallOffset;
  }

  /** Starts where the wall clock starts, so tests that only read `now` see no difference. */
  monotonic(): number {
    return this.time;
  }

  /** Steps the wall clock alone (NTP, a VM resumed): no sleeper wakes, monotonic time stays. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  /**
   * Moves time on without waking anyone, as a busy event loop runs timers late: code that
   * reads the clock now sees a deadline passed whose timer has not fired. The next `advance`
   * wakes the sleepers then due.
   */
  stall(ms: number): void {
    this.time += ms;
  }

  /** Values `random()` returns next (then 0.5 once exhausted). */
  setRandom(...values: number[]): void {
    this.randomValues = values;
  }

  random(): number {
    return this.randomValues.shift() ?? 0.5;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.requestedSleeps.push(ms);
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Like a zero timer: due at once, without waiting for the test to move time.
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.time + Math.max(0, ms),
        ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers.splice(this.sleepers.indexOf(sleeper), 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** Pending sleeps as remaining milliseconds, soonest first. */
  pending(): number[] {
    return this.sleepers.map((s) => s.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, waking each sleeper due on the way in order. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      await settle();
      const due = this.sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.sleepers.splice(this.sleepers.indexOf(due), 1);
      this.time = Math.max(this.time, due.at);
      due.resolve();
    }
    this.time = target;
    await settle();
  }

  /** Moves time to the next pending sleeper's deadline and wakes it. */
  async advanceToNext(): Promise<number> {
    await settle();
    const next = this.pending()[0];
    if (next === undefined) throw new Error('FakeClock: nothing is sleeping');
    await this.advance(next);
    return next;
  }
}

/** Lets queued promise callbacks and immediate I/O callbacks run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** Polls (in real time) until `check` returns a truthy value; fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
