// The heartbeat loop (contract policy rules 1–9): periodic with jitter, at once on
// a state change but never inside the minimum gap, one request at a time, retries
// that give way to the next heartbeat, and exactly one final heartbeat.
// Everything it touches is passed in, so tests drive it with a fake clock.
import pRetry from 'p-retry';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { HeartbeatTaskRunRequest, TaskRunHeartbeat } from '../tes/types.gen.ts';
import { type AttemptFailure, retryDecision } from './retry-policy.ts';

export type EndReason = 'complete' | 'signal' | 'pod-deleted';

/** Where the bearer token comes from (contract rule 6). */
export interface Bearer {
  current(): Promise<string | undefined>;
  /** After a 401: re-read the token file and drop a rotated jwt. */
  unauthorized(): Promise<void>;
  /** A 200 carried a non-empty jwt. */
  rotated(jwt: string): Promise<void>;
}

export interface HeartbeatObserver {
  attempt(seconds: number): void;
  heartbeat(result: 'success' | 'failure', at: number): void;
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
  /** One HTTP attempt; throws an AttemptFailure-shaped error. */
  send(body: HeartbeatTaskRunRequest, token: string | undefined): Promise<TaskRunHeartbeat>;
  bearer: Bearer;
  /** Discard the TES connections (rule 9). */
  resetConnections(): Promise<void>;
  observer: HeartbeatObserver;
}

const JITTER = 0.1;

export class HeartbeatLoop {
  private readonly o: HeartbeatLoopOptions;
  private lastStart: number | undefined;
  private nextPeriodicAt = 0;
  /** A Retry-After that ran past the next heartbeat holds the loop back until then. */
  private holdUntil = 0;
  private sentSignature: string | undefined;
  private failuresInARow = 0;
  private wake = new AbortController();
  private readonly endController = new AbortController();
  private endSeenAt = 0;
  private beforeFinal: Promise<unknown> = Promise.resolve();
  private finalSent = false;
  lastSuccessAt: number | undefined;

  constructor(options: HeartbeatLoopOptions) {
    this.o = options;
  }

  get ending(): boolean {
    return this.endController.signal.aborted;
  }

  /** Aborted when the end has been seen. */
  get endSignal(): AbortSignal {
    return this.endController.signal;
  }

  /** The pod snapshot changed: wake the loop when a reported container changed state. */
  podUpdated(): void {
    if (this.changePending()) this.wake.abort();
  }

  /**
   * The end has come: stop retrying, let the current attempt finish, wait for
   * `prepare` (a last pod refresh), then send the final heartbeat. Only the first call counts.
   */
  end(reason: EndReason, prepare?: Promise<unknown>): void {
    if (this.ending) return;
    this.o.log.info({ reason }, 'ending: the final heartbeat follows');
    this.endSeenAt = this.o.clock.now();
    if (prepare) this.beforeFinal = prepare.catch(() => undefined);
    this.endController.abort(new Error(`ending: ${reason}`));
    this.wake.abort();
  }

  /** Runs until the final heartbeat was acknowledged or its deadline passed. */
  async run(): Promise<void> {
    while (!this.ending) {
      const wait = this.nextDueAt() - this.o.clock.now();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      await this.beat(false);
    }
    await this.beforeFinal;
    await this.beat(true);
  }

  private changePending(): boolean {
    return this.sentSignature !== undefined && this.o.signature() !== this.sentSignature;
  }

  private nextDueAt(): number {
    if (this.lastStart === undefined) return this.holdUntil;
    const onChange = this.changePending() ? this.lastStart + this.o.minGapMs : Number.POSITIVE_INFINITY;
    return Math.max(Math.min(this.nextPeriodicAt, onChange), this.holdUntil);
  }

  private async sleep(ms: number): Promise<void> {
    this.wake = new AbortController();
    await this.o.clock.sleep(ms, this.wake.signal).catch(() => undefined);
  }

  private async beat(last: boolean): Promise<void> {
    if (last && this.finalSent) return;
    this.finalSent ||= last;
    const { clock, log } = this.o;
    const start = clock.now();
    this.lastStart = start;
    this.nextPeriodicAt = start + this.o.intervalMs * (1 - JITTER + 2 * JITTER * clock.random());
    const retryUntil = last ? this.endSeenAt + this.o.finalDeadlineMs : this.nextPeriodicAt;
    // The final heartbeat's retries are bounded by its deadline, not by the end.
    const stop = last ? undefined : this.endController.signal;
    let failedAttempts = 0;
    let unauthorizedRetried = false;

    try {
      const reply = await pRetry(() => this.attempt(last), {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: 0, // delays come from the retry policy, on our clock
        // No `signal`: p-retry would turn an attempt that succeeded while the end came
        // into a failure. The end stops the retries here instead.
        shouldRetry: async ({ error }) => {
          failedAttempts++;
          const failure = error as Partial<AttemptFailure>;
          await this.countFailedAttempt(failure);
          const decision = retryDecision({
            failure: { retryable: failure.retryable ?? false, ...pick(failure) },
            failedAttempts,
            now: clock.now(),
            retryUntil,
            final: last,
            unauthorizedRetried,
            random: clock.random(),
          });
          if (!decision.retry) {
            if (decision.holdUntil !== undefined) this.holdUntil = decision.holdUntil;
            return false;
          }
          if (stop?.aborted) return false;
          if (decision.reloadToken) {
            unauthorizedRetried = true;
            await this.o.bearer.unauthorized();
          }
          log.debug({ err: error, delayMs: decision.delayMs, last }, 'heartbeat attempt failed; retrying');
          // Woken early by the end: the final heartbeat takes over.
          return clock.sleep(decision.delayMs, stop).then(
            () => true,
            () => false,
          );
        },
      });
      this.failuresInARow = 0;
      this.lastSuccessAt = clock.now();
      this.o.observer.heartbeat('success', this.lastSuccessAt);
      if (reply.jwt) await this.o.bearer.rotated(reply.jwt);
      log[last || failedAttempts > 0 ? 'info' : 'debug'](
        { last, attempts: failedAttempts + 1 },
        last ? 'final heartbeat acknowledged' : 'heartbeat acknowledged',
      );
    } catch (error) {
      this.o.observer.heartbeat('failure', clock.now());
      // The error carries the status and the service's ErrorResponse code and message.
      const failure = error as Partial<AttemptFailure>;
      const level = failure.retryable === false ? 'error' : 'warn';
      log[level]({ err: error, status: failure.status, last, attempts: failedAttempts }, 'heartbeat failed');
    }
  }

  private async attempt(last: boolean): Promise<TaskRunHeartbeat> {
    const { clock, observer } = this.o;
    // Every attempt carries the newest snapshot, so a change seen now needs no beat of its own.
    this.sentSignature = this.o.signature();
    const body = this.o.body(last);
    const token = await this.o.bearer.current();
    const started = clock.now();
    try {
      return await this.o.send(body, token);
    } finally {
      observer.attempt((clock.now() - started) / 1000);
    }
  }

  /** Rule 9: two failed attempts in a row, across heartbeats, recycle the connections. */
  private async countFailedAttempt(failure: Partial<AttemptFailure>): Promise<void> {
    if (!failure.retryable) {
      this.failuresInARow = 0;
      return;
    }
    if (++this.failuresInARow < 2) return;
    this.failuresInARow = 0;
    this.o.log.info('two failed attempts in a row: dialling fresh TES connections');
    await this.o.resetConnections();
  }
}

function pick(failure: Partial<AttemptFailure>): Omit<AttemptFailure, 'retryable'> {
  return {
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
  };
}
