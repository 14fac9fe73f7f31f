// Feeds the loop's heartbeat outcomes and the clock into the Events' state machine
// (heartbeat/health-events.ts) and hands each Event to the writer, in order and off the
// heartbeat's path: the observer returns at once, whatever the API server does.
import { type Clock, waitAtMost } from '../clock.ts';
import {
  failingDueAt,
  failureFacts,
  type HealthEvent,
  type HealthInput,
  type HealthState,
  initialHealth,
  type Reporter,
  nextHealth,
} from '../heartbeat/health-events.ts';
import type { HeartbeatDetail, HeartbeatObserver } from '../heartbeat/loop.ts';

export interface PodEventsOptions {
  clock: Clock;
  intervalMs: number;
  /** Who the notes name: the pod's sidecar (default), or a fleet. */
  reporter?: Reporter;
  /** Records one Event; never throws (kube/events.ts). */
  write(event: HealthEvent, signal: AbortSignal): Promise<unknown>;
}

/** Shared by every run's PodEvents until its first Event. */
const NOTHING_WRITTEN: Promise<unknown> = Promise.resolve();
// Abort reasons shared by every run: a timer is re-armed after each heartbeat, and the
// fleet closes thousands at its exit (abort() without a reason makes a DOMException).
const DISARMED = new Error('the HeartbeatFailing timer was disarmed');
const GIVEN_UP = new Error('the Events still being written were given up');

export class PodEvents implements HeartbeatObserver {
  private readonly o: PodEventsOptions;
  private state: HealthState;
  private writes: Promise<unknown> = NOTHING_WRITTEN;
  /** Aborts a write still running when the agent exits (made with the first Event: most runs write none). */
  private giveUp: AbortController | undefined;
  private timer: AbortController | undefined;
  private timerDueAt: number | undefined;
  private closed = false;

  /** "Three intervals after the start" counts from now: construct it when the agent starts. */
  constructor(options: PodEventsOptions) {
    this.o = options;
    this.state = initialHealth(options.clock.monotonic(), options.reporter);
    this.arm();
  }

  attempt(): void {}

  heartbeat(result: 'success' | 'failure', _at: number, detail: HeartbeatDetail): void {
    this.apply({
      kind: 'heartbeat',
      at: this.o.clock.monotonic(),
      result,
      final: detail.last,
      ...(result === 'failure' ? { failure: failureFacts(detail.error) } : {}),
    });
  }

  /**
   * The agent is exiting: waits for the Events still being written (the final one)
   * at most `budgetMs`, then gives them up. Nothing is recorded afterwards.
   */
  async close(budgetMs: number): Promise<void> {
    this.closed = true;
    this.timer?.abort(DISARMED);
    if (this.writes === NOTHING_WRITTEN) return;
    await waitAtMost(this.o.clock, this.writes, budgetMs);
    this.giveUp?.abort(GIVEN_UP);
  }

  private apply(input: HealthInput): void {
    if (this.closed) return;
    const step = nextHealth(this.state, input, this.o.intervalMs);
    this.state = step.state;
    const event = step.event;
    if (event) {
      this.giveUp ??= new AbortController();
      const { signal } = this.giveUp;
      this.writes = this.writes.then(() => this.o.write(event, signal));
    }
    this.arm();
  }

  /** "Nothing succeeded for three intervals" comes true while nothing happens: a timer raises it. */
  private arm(): void {
    const due = failingDueAt(this.state, this.o.intervalMs);
    if (due === this.timerDueAt) return;
    this.timer?.abort(DISARMED);
    this.timer = undefined;
    this.timerDueAt = due;
    if (due === undefined) return;
    const timer = new AbortController();
    this.timer = timer;
    this.o.clock.sleep(Math.max(0, due - this.o.clock.monotonic()), timer.signal).then(
      () => {
        this.timer = undefined;
        this.timerDueAt = undefined;
        this.apply({ kind: 'tick', at: this.o.clock.monotonic() });
      },
      () => undefined,
    );
  }
}
