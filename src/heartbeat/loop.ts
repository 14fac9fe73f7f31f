// The heartbeat loop (contract policy rules 1–9, 13–15): periodic with jitter, at once
// on a state change but never inside the minimum gap, one request at a time, retries
// that give way to the next heartbeat, and exactly one final heartbeat, bounded.
// Everything it touches is passed in, so tests drive it with a fake clock. Every wait
// and deadline is on the monotonic clock; the wall clock only stamps (rule 14).
//
// One heartbeat is a short explicit loop (`beat`): attempt, ask the pure policy
// (retry-policy.ts) what a failure means, carry that out in plain sight. Not p-retry:
// its retries are counted per call, while ours stop at a moment (the next heartbeat,
// the final deadline), share a failure count across heartbeats (rule 9), hold later
// heartbeats (a long Retry-After) and give way to the end — all of it would live in
// side effects inside its callbacks.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { HeartbeatTaskRunRequest, TaskRunHeartbeat } from '../tes/types.gen.ts';
import { Latch } from './latch.ts';
import { type AttemptFailure, retryDecision } from './retry-policy.ts';

export type EndReason = 'complete' | 'signal' | 'pod-deleted';

/** How the loop ended: its final heartbeat acknowledged or not, or abandoned without one. */
export type LoopOutcome = 'final-sent' | 'final-failed' | 'abandoned';

/** Where the bearer token comes from (contract rule 6). */
export interface Bearer {
  current(): Promise<string | undefined>;
  /** After a 401: re-read the token file and drop a rotated jwt. */
  unauthorized(): Promise<void>;
  /** A 200 carried a non-empty jwt. */
  rotated(jwt: string): Promise<void>;
}

/** What the loop reports as it goes (the metrics; the Events recorder). */
export interface HeartbeatObserver {
  /** One HTTP attempt ended, after `seconds`. */
  attempt(seconds: number): void;
  /** One heartbeat ended (retries included); `at` is wall-clock ms, a stamp. */
  heartbeat(result: 'success' | 'failure', at: number, detail: HeartbeatDetail): void;
}

export interface HeartbeatDetail {
  last: boolean;
  /** Attempts made, the last one included. */
  attempts: number;
  /** Why it failed: a TesError (status, code, message) or the cut-off at the final deadline. */
  error?: unknown;
}

export interface HeartbeatLoopOptions {
  clock: Clock;
  log: Logger;
  intervalMs: number;
  minGapMs: number;
  finalDeadlineMs: number;
  /** The body from the newest snapshot; called for every attempt. */
  body(last: boolean): HeartbeatTaskRunRequest;
  /** The newest snapshot's container-state signature (rule 3). */
  signature(): string;
  /**
   * One HTTP attempt; throws an AttemptFailure-shaped error. Aborting `signal` ends
   * it at once (the attempt in flight when the end comes, the final deadline).
   */
  send(
    body: HeartbeatTaskRunRequest,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<TaskRunHeartbeat>;
  bearer: Bearer;
  /** Discard the TES connections (rule 9); false when a shared pool declined (the fleet: fleet/tes-pool.ts). */
  resetConnections(): Promise<unknown>;
  observer: HeartbeatObserver;
}

const JITTER = 0.1;
/** The final heartbeat's first attempt keeps at least half its deadline, never less than this. */
const FINAL_FIRST_ATTEMPT_MIN_MS = 300;
/** /healthz: the loop counts as alive while it ticked within max(2 × interval, this). */
const LIVENESS_FLOOR_MS = 60_000;

/**
 * Abort reasons shared by every loop of the process: the fleet stops thousands of loops
 * at once, and a reason made per controller (an Error with its stack, or the DOMException
 * that `abort()` makes without one) cost ~1.7 s of a 10,000-run exit. Nothing reads a
 * reason's identity; the `why`s are a handful of fixed sentences.
 */
const WOKEN = new Error('the heartbeat loop was woken');
const DONE = new Error('the heartbeat loop is done');
const cutOffReasons = new Map<string, Error>();
const SETTLED = Promise.resolve();

function cutOffReason(why: string): Error {
  let reason = cutOffReasons.get(why);
  if (!reason) {
    reason = new Error(`heartbeat attempt cut off: ${why}`);
    cutOffReasons.set(why, reason);
  }
  return reason;
}

export class HeartbeatLoop {
  private readonly o: HeartbeatLoopOptions;
  // Every time below is monotonic milliseconds.
  private lastStart: number | undefined;
  private nextPeriodicAt = 0;
  /** A Retry-After that ran past the next heartbeat holds the loop back until then. */
  private holdUntil = 0;
  private sentSignature: string | undefined;
  private failuresInARow = 0;
  private wake = new AbortController();
  // Latches, not AbortControllers: a fleet holds thousands of loops that never end while
  // it runs, so a signal is made only for the one who asks for it (latch.ts).
  /** The end has been seen. */
  private readonly endSeen = new Latch();
  private endSeenAt = 0;
  /** The attempt in flight and the refresh must give way to the final heartbeat. */
  private readonly giveWay = new Latch();
  /** Cancels the end's timers once the loop is done, so none keeps the process alive (made by the end). */
  private timers: Latch | undefined;
  private done = false;
  /** The loop stops without a final heartbeat (`abandon`). */
  private abandoned = false;
  /** Even a final heartbeat already due must stop (`abandon` with `evenFinal`). */
  private readonly abandonedFinal = new Latch();
  /** What stops a periodic heartbeat's attempts: giveWay or abandoned, whichever came first. */
  private readonly beatStop = new Latch();
  /** What stops a periodic heartbeat's retries: the end or abandoned. */
  private readonly retryStop = new Latch();
  /** What stops the final heartbeat: the final deadline or abandonedFinal. */
  private readonly finalStop = new Latch();
  private beforeFinal: Promise<unknown> = SETTLED;
  private finalSent = false;
  private finalAcknowledged = false;
  /** Failures that repeat until someone fixes the setup, logged at error once each (rule 20). */
  private readonly loggedOnce = new Set<string>();
  private tickedAt: number;
  lastSuccessAt: number | undefined;

  constructor(options: HeartbeatLoopOptions) {
    this.o = options;
    this.tickedAt = options.clock.monotonic();
  }

  get ending(): boolean {
    return this.endSeen.fired;
  }

  /** Aborted when the end has been seen. */
  get endSignal(): AbortSignal {
    return this.endSeen.signal;
  }

  /** Aborted when the end's other work (the pod refresh) must stop for the final heartbeat. */
  get giveWaySignal(): AbortSignal {
    return this.giveWay.signal;
  }

  /** Whether the loop has ticked within max(2 × interval, 60 s): a wedged loop is not alive. */
  alive(): boolean {
    const window = Math.max(2 * this.o.intervalMs, LIVENESS_FLOOR_MS);
    return this.o.clock.monotonic() - this.tickedAt <= window;
  }

  /** The pod snapshot changed: wake the loop when a reported container changed state. */
  podUpdated(): void {
    if (this.changePending()) this.wake.abort(WOKEN);
  }

  /**
   * The end has come (rules 8 and 15): stop retrying, give the attempt in flight and
   * `prepare` (a last pod refresh) until half the final deadline at most, then send
   * the final heartbeat, cut off at the deadline. Only the first call counts.
   */
  end(reason: EndReason, prepare?: Promise<unknown>): void {
    if (this.ending) return;
    const { clock, log, finalDeadlineMs } = this.o;
    log.info({ reason }, 'ending: the final heartbeat follows');
    this.endSeenAt = clock.monotonic();
    const reserve = Math.min(finalDeadlineMs, Math.max(finalDeadlineMs / 2, FINAL_FIRST_ATTEMPT_MIN_MS));
    this.after(finalDeadlineMs - reserve, () =>
      this.giveWayNow(cutOffReason('the final heartbeat goes first')),
    );
    this.after(finalDeadlineMs, () => {
      this.finalStop.fire(cutOffReason('FINAL_HEARTBEAT_DEADLINE passed'));
    });
    if (prepare) this.beforeFinal = prepare.catch(() => undefined);
    const ending = new Error(`ending: ${reason}`);
    this.endSeen.fire(ending);
    this.retryStop.fire(ending);
    this.wake.abort(WOKEN);
  }

  /**
   * Stops the loop without a final heartbeat: the attempt in flight is aborted and
   * nothing more is sent (the fleet's SIGTERM: the task goes on and the next fleet takes
   * over; a lost leadership). A final heartbeat already due still goes out unless
   * `evenFinal` (a leader that lost its lease must fall silent at once).
   */
  abandon(why: string, options: { evenFinal?: boolean } = {}): void {
    const reason = cutOffReason(why);
    if (!this.ending && !this.abandoned) this.o.log.info({ why }, 'heartbeats stop without a final one');
    this.abandoned = true;
    this.beatStop.fire(reason);
    this.retryStop.fire(reason);
    if (options.evenFinal) {
      this.abandonedFinal.fire(reason);
      this.finalStop.fire(reason);
    }
    this.wake.abort(WOKEN);
  }

  /** Runs until the final heartbeat was acknowledged or its deadline passed, or the loop was abandoned. */
  async run(): Promise<LoopOutcome> {
    try {
      while (!this.ending) {
        if (this.abandoned) return 'abandoned';
        this.tick();
        const wait = this.nextDueAt() - this.o.clock.monotonic();
        if (wait > 0) {
          await this.sleep(Math.min(wait, this.longestSleep()));
          continue;
        }
        await this.beat(false);
      }
      await Promise.race([
        this.beforeFinal,
        aborted(this.giveWay.signal),
        aborted(this.abandonedFinal.signal),
      ]);
      if (this.abandonedFinal.fired) return 'abandoned';
      await this.beat(true);
      if (this.abandonedFinal.fired) return 'abandoned';
      return this.finalAcknowledged ? 'final-sent' : 'final-failed';
    } finally {
      this.done = true;
      this.timers?.fire(DONE);
    }
  }

  private tick(): void {
    this.tickedAt = this.o.clock.monotonic();
  }

  /** Long sleeps are cut into pieces, so the loop ticks well inside the liveness window. */
  private longestSleep(): number {
    return 0.6 * Math.max(2 * this.o.intervalMs, LIVENESS_FLOOR_MS);
  }

  private changePending(): boolean {
    return this.sentSignature !== undefined && this.o.signature() !== this.sentSignature;
  }

  private nextDueAt(): number {
    if (this.lastStart === undefined) return this.holdUntil;
    const onChange = this.changePending() ? this.lastStart + this.o.minGapMs : Number.POSITIVE_INFINITY;
    return Math.max(Math.min(this.nextPeriodicAt, onChange), this.holdUntil);
  }

  private sleep(ms: number): Promise<void> {
    this.wake = new AbortController();
    return this.o.clock.sleep(ms, this.wake.signal).catch(ignore);
  }

  /** One heartbeat: attempts until one is answered, the policy says stop, or the end takes over. */
  private async beat(last: boolean): Promise<void> {
    if (last && this.finalSent) return;
    this.finalSent ||= last;
    const { clock, log } = this.o;
    const start = clock.monotonic();
    this.lastStart = start;
    this.nextPeriodicAt = start + this.o.intervalMs * (1 - JITTER + 2 * JITTER * clock.random());
    const retryUntil = last ? this.endSeenAt + this.o.finalDeadlineMs : this.nextPeriodicAt;
    // An attempt in flight when the end comes gives way; the final one runs to its deadline.
    const stop = last ? this.finalStop : this.beatStop;
    const retryWake = last ? stop : this.retryStop;
    let attempts = 0;
    let unauthorizedRetried = false;

    for (;;) {
      attempts++;
      this.tick();
      let reply: TaskRunHeartbeat;
      try {
        reply = await this.attempt(last, stop);
      } catch (error) {
        // Abandoned: nothing is reported for an attempt that was cut off on purpose.
        if (last ? this.abandonedFinal.fired : this.abandoned) return;
        const failure = error as Partial<AttemptFailure>;
        await this.countFailedAttempt(failure);
        const decision = retryDecision({
          failure: { retryable: failure.retryable ?? false, ...pick(failure) },
          failedAttempts: attempts,
          now: clock.monotonic(),
          retryUntil,
          final: last,
          unauthorizedRetried,
          random: clock.random(),
        });
        if (!decision.retry && decision.holdUntil !== undefined) this.holdUntil = decision.holdUntil;
        // The end stops a heartbeat's retries: the final one takes over with fresh data.
        if (decision.retry && (last || !(this.ending || this.abandoned))) {
          if (decision.reloadToken) {
            unauthorizedRetried = true;
            await this.o.bearer.unauthorized();
          }
          log.debug({ err: error, delayMs: decision.delayMs, last }, 'heartbeat attempt failed; retrying');
          const woken = await clock.sleep(decision.delayMs, retryWake.signal).then(
            () => false,
            () => true,
          );
          if (!woken) continue;
        }
        this.failed(error, last, attempts);
        return;
      }
      await this.succeeded(reply, last, attempts);
      return;
    }
  }

  /** One HTTP attempt, cut off when `stop` fires (a fresh signal each time: no listener piles up). */
  private async attempt(last: boolean, stop: Latch): Promise<TaskRunHeartbeat> {
    const { clock, observer } = this.o;
    // Every attempt carries the newest snapshot, so a change seen now needs no beat of its own.
    this.sentSignature = this.o.signature();
    const body = this.o.body(last);
    const token = await this.o.bearer.current();
    if (stop.fired) throw stop.reason;
    const cut = new AbortController();
    stop.attach(cut);
    const started = clock.monotonic();
    try {
      return await this.o.send(body, token, cut.signal);
    } finally {
      stop.detach(cut);
      observer.attempt((clock.monotonic() - started) / 1000);
    }
  }

  private async succeeded(reply: TaskRunHeartbeat, last: boolean, attempts: number): Promise<void> {
    const { clock, log } = this.o;
    this.failuresInARow = 0;
    this.lastSuccessAt = clock.monotonic();
    this.finalAcknowledged ||= last;
    this.o.observer.heartbeat('success', clock.now(), { last, attempts });
    if (reply.jwt) await this.o.bearer.rotated(reply.jwt);
    log[last || attempts > 1 ? 'info' : 'debug'](
      { last, attempts },
      last ? 'final heartbeat acknowledged' : 'heartbeat acknowledged',
    );
  }

  private failed(error: unknown, last: boolean, attempts: number): void {
    const failure = error as Partial<AttemptFailure>;
    this.o.observer.heartbeat('failure', this.o.clock.now(), { last, attempts, error });
    // The error carries the status and the service's ErrorResponse code and message.
    // A failure the error marks `logOnce` (TesError: TES_URL is no TES) repeats on
    // every heartbeat until someone fixes the setup: at error once, then at debug.
    const once = (error as { logOnce?: unknown }).logOnce;
    const repeated = typeof once === 'string' && this.loggedOnce.has(once);
    if (typeof once === 'string') this.loggedOnce.add(once);
    const level = repeated ? 'debug' : failure.retryable === false ? 'error' : 'warn';
    this.o.log[level]({ err: error, status: failure.status, last, attempts }, 'heartbeat failed');
  }

  /** Rule 9: two failed attempts in a row, across heartbeats, recycle the connections. */
  private async countFailedAttempt(failure: Partial<AttemptFailure>): Promise<void> {
    if (!failure.retryable) {
      this.failuresInARow = 0;
      return;
    }
    if (++this.failuresInARow < 2) return;
    this.failuresInARow = 0;
    if ((await this.o.resetConnections()) !== false)
      this.o.log.info('two failed attempts in a row: dialling fresh TES connections');
  }

  private giveWayNow(reason: Error): void {
    this.giveWay.fire(reason);
    this.beatStop.fire(reason);
  }

  /** Calls `fn` after `ms` of monotonic time (the timer is cancelled when the loop is done). */
  private after(ms: number, fn: () => void): void {
    if (this.done) return;
    this.timers ??= new Latch();
    this.o.clock.sleep(ms, this.timers.signal).then(fn, ignore);
  }
}

function pick(failure: Partial<AttemptFailure>): Omit<AttemptFailure, 'retryable'> {
  return {
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
  };
}

/** Resolves when `signal` aborts (at once when it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function ignore(): undefined {
  return undefined;
}
