// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection): one function, tryAcquireOrRenew, in three
// steps (get or create; check the holder and the observed time; update), an acquire
// loop around it (jittered) and a renew loop (under the renew deadline).
//
// What it does not do, like client-go: fence. Two processes can both believe they
// lead for a moment; what keeps them apart is timing. A leader that has not renewed
// within the renew deadline stops at once (its leadership signal aborts, so its work
// and its attempts in flight stop), while a standby waits a whole lease duration
// after it last saw the record change — and lease duration > renew deadline.
//
// Clock skew: the timestamps in the record are another machine's wall clock and are
// never compared with ours. A standby only notes *that* the record changed
// (resourceVersion, renewTime, holder) and measures on its own monotonic clock how
// long it has stayed unchanged. A wall clock stepped by NTP or a resumed VM therefore
// changes nothing here; only the stamps written into the record move.
//
// The elector knows nothing of what the leader does: the fleet's work runs under the
// signal `onStartedLeading` receives.
import type { Clock } from '../clock.ts';
import { LEASE_JITTER_FACTOR, type LeaseTimings, leaseTimingProblems } from '../config/fleet.ts';
import type { KubeApi, KubeCall } from '../kube/api.ts';
import { KubeError } from '../kube/api.ts';
import { microTime } from '../kube/events.ts';
import type { Lease } from '../kube/types.ts';
import type { Logger } from '../log.ts';

/** The longest a release on stop may take. */
const RELEASE_BUDGET_MS = 1_000;

/** The Lease calls the elector makes (KubeApi's; a test may hand in the same calls through another path). */
export type LeaseApi = Pick<KubeApi, 'getLease' | 'createLease' | 'replaceLease'>;

export interface LeaseElectorOptions extends LeaseTimings {
  api: LeaseApi;
  clock: Clock;
  log: Logger;
  namespace: string;
  name: string;
  /** `holderIdentity`: unique among the candidates (the pod's name). */
  identity: string;
  /** Leadership begins; `signal` aborts the moment it ends (renew deadline passed, or stopping). */
  onStartedLeading(signal: AbortSignal): void;
  /** Leadership ended (after the signal aborted); the elector competes again unless stopping. */
  onStoppedLeading(): void;
}

const TIMING_NAMES: Record<keyof LeaseTimings, string> = {
  leaseDurationMs: 'the lease duration',
  renewDeadlineMs: 'the renew deadline',
  retryPeriodMs: 'the retry period',
};

/** The record as last seen, and when (monotonic) it was first seen like that. */
interface Observation {
  key: string;
  holder: string;
  at: number;
  durationMs: number;
}

export class LeaseElector {
  private readonly options: LeaseElectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Bound on each API call: below the renew deadline, so one hanging call cannot outlive it. */
  private readonly callTimeoutMs: number;
  /** The lease as last read or written: its resourceVersion guards the next write. */
  private current: Lease | undefined;
  private observed: Observation | undefined;
  /** Set while leading; aborted when leadership ends. */
  private leadership: AbortController | undefined;
  /** Monotonic start of the last successful acquire or renew attempt. */
  private renewedAt = 0;
  private watchdog: AbortController | undefined;
  /** API failures in a row: the first is a warning, the rest debug until an answer comes. */
  private failures = 0;

  constructor(options: LeaseElectorOptions) {
    const problems = leaseTimingProblems(
      options,
      (timing) => `${TIMING_NAMES[timing]} (${options[timing]} ms)`,
    );
    if (problems.length > 0) throw new Error(`lease elector: ${problems.join('; ')}`);
    this.options = options;
    this.clock = options.clock;
    this.log = options.log;
    this.callTimeoutMs = Math.max(1, Math.floor(options.renewDeadlineMs / 2));
  }

  get isLeader(): boolean {
    return this.leadership !== undefined;
  }

  /**
   * Competes, leads, competes again after a lost leadership, until `stop` aborts; then
   * ends the leadership (its signal first) and releases the lease if this process
   * holds it. Resolves once released (or the release gave up, after a second at most).
   */
  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      if (!(await this.acquire(stop))) break;
      await this.lead(stop);
    }
    this.endLeadership('stopping');
    await this.release();
  }

  /** Tries at once, then every 1–1.2 retry periods, until this process leads (true) or stops (false). */
  private async acquire(stop: AbortSignal): Promise<boolean> {
    const { retryPeriodMs } = this.options;
    for (;;) {
      const attempt = this.clock.monotonic();
      if (await this.tryAcquireOrRenew(stop)) {
        this.renewedAt = attempt;
        return true;
      }
      const wait = retryPeriodMs * (1 + (LEASE_JITTER_FACTOR - 1) * this.clock.random());
      try {
        await this.clock.sleep(wait, stop);
      } catch {
        return false;
      }
    }
  }

  /** Renews every retry period while the renew deadline holds; returns when leadership ends. */
  private async lead(stop: AbortSignal): Promise<void> {
    const leadership = new AbortController();
    this.leadership = leadership;
    this.armWatchdog(leadership);
    this.log.info(
      { lease: this.leaseName, identity: this.options.identity },
      'leading: this process holds the lease',
    );
    try {
      this.options.onStartedLeading(leadership.signal);
    } catch (error) {
      this.log.error({ err: error }, 'onStartedLeading failed');
    }
    const working = AbortSignal.any([leadership.signal, stop]);
    while (!working.aborted) {
      try {
        await this.clock.sleep(this.options.retryPeriodMs, working);
      } catch {
        break;
      }
      const attempt = this.clock.monotonic();
      // A failed renewal is tried again next period, until the watchdog ends the leadership.
      if ((await this.tryAcquireOrRenew(working)) && !working.aborted) {
        this.renewedAt = attempt;
        this.armWatchdog(leadership);
      }
    }
  }

  /**
   * The renew deadline, counted from the start of the last successful attempt (the
   * record cannot have changed before that, so no standby's observation is older).
   */
  private armWatchdog(leadership: AbortController): void {
    this.watchdog?.abort();
    const watchdog = new AbortController();
    this.watchdog = watchdog;
    const left = this.renewedAt + this.options.renewDeadlineMs - this.clock.monotonic();
    this.clock.sleep(Math.max(0, left), watchdog.signal).then(
      () => {
        if (this.leadership === leadership) this.endLeadership('renew deadline passed');
      },
      () => {},
    );
  }

  private endLeadership(reason: string): void {
    const leadership = this.leadership;
    if (!leadership) return;
    this.leadership = undefined;
    this.watchdog?.abort();
    leadership.abort(new Error(`leadership ended: ${reason}`));
    const level = reason === 'stopping' ? 'info' : 'warn';
    this.log[level]({ lease: this.leaseName, identity: this.options.identity, reason }, 'leadership ended');
    try {
      this.options.onStoppedLeading();
    } catch (error) {
      this.log.error({ err: error }, 'onStoppedLeading failed');
    }
  }

  /**
   * client-go's tryAcquireOrRenew: true when this process holds the lease after it.
   * Every write is a PUT carrying the resourceVersion last read; a 409 is never
   * retried blindly — the next try reads again.
   */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const call: KubeCall = { timeoutMs: this.callTimeoutMs, signal };
    const { api, namespace, name, identity } = this.options;
    const now = microTime(this.clock.now());
    const record = {
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
    };

    // 0. A leader renews the object it last wrote, without a read, while nobody else
    // writes (client-go's fast path: half the calls). A conflict means someone did: read.
    const held = this.current;
    if (this.leadership && held?.spec?.holderIdentity === identity) {
      try {
        return this.wrote(await api.replaceLease({ ...held, spec: { ...held.spec, renewTime: now } }, call));
      } catch (error) {
        if (!isConflict(error)) return this.failed(error, 'renew');
      }
    }

    // 1. Get the lease, or create it.
    let lease: Lease;
    try {
      lease = await api.getLease(namespace, name, call);
    } catch (error) {
      if (!(error instanceof KubeError && error.status === 404)) return this.failed(error, 'read');
      const created: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: { ...record, leaseTransitions: 0 },
      };
      try {
        return this.wrote(await api.createLease(created, call));
      } catch (createError) {
        return this.failed(createError, 'create'); // 409 AlreadyExists: another won; read it next try
      }
    }

    // 2. Check the holder and how long the record has stood still, on our own clock.
    this.current = lease;
    this.observe(lease);
    this.failures = 0;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== '' && holder !== identity && this.heldByOther()) {
      this.log.debug({ lease: this.leaseName, holder }, 'lease held by another process');
      return false;
    }

    // 3. Take or renew it.
    const transitions = lease.spec?.leaseTransitions ?? 0;
    const spec =
      holder === identity
        ? { ...record, acquireTime: lease.spec?.acquireTime ?? now, leaseTransitions: transitions }
        : { ...record, leaseTransitions: transitions + 1 };
    try {
      return this.wrote(await api.replaceLease({ ...lease, spec }, call));
    } catch (error) {
      return this.failed(error, 'update'); // 409 Conflict: someone wrote since our read
    }
  }

  /** Notes the time (monotonic) whenever the record changes; an unchanged record keeps its first sighting. */
  private observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    const key = [lease.metadata?.resourceVersion, spec.holderIdentity, spec.renewTime].join('|');
    if (this.observed?.key === key) return;
    this.observed = {
      key,
      holder: spec.holderIdentity ?? '',
      at: this.clock.monotonic(),
      durationMs: (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000,
    };
  }

  /** The holder's term, by the record's own duration (a released lease says 1 s), has not run out since we saw it change. */
  private heldByOther(): boolean {
    const seen = this.observed;
    return seen !== undefined && this.clock.monotonic() < seen.at + seen.durationMs;
  }

  private wrote(lease: Lease): true {
    this.current = lease;
    this.observe(lease);
    this.failures = 0;
    return true;
  }

  private failed(error: unknown, step: string): false {
    if (error instanceof KubeError && error.code === 'KUBE_ABORTED') return false;
    const expected = error instanceof KubeError;
    const level = !expected ? 'error' : this.failures === 0 && !isConflict(error) ? 'warn' : 'debug';
    this.failures++;
    this.log[level](
      {
        lease: this.leaseName,
        step,
        err: error,
        status: error instanceof KubeError ? error.status : undefined,
      },
      `lease ${step} failed`,
    );
    return false;
  }

  /**
   * client-go's release: holder emptied and leaseDurationSeconds 1, so a standby takes
   * over at its next try instead of a lease duration later. Only while this process
   * is the holder of the version last seen; a 409 reads again and releases only if
   * the lease is still ours. Bounded by a second in all (the process is exiting; if the
   * API cannot answer, a standby takes the lease after its duration anyway).
   */
  private async release(): Promise<void> {
    const { api, namespace, name, identity, retryPeriodMs } = this.options;
    const deadline = this.clock.monotonic() + Math.min(retryPeriodMs, RELEASE_BUDGET_MS);
    const call = (): KubeCall => ({ timeoutMs: Math.max(1, deadline - this.clock.monotonic()) });
    for (let tries = 0; tries < 2; tries++) {
      const lease = this.current;
      if (lease?.spec?.holderIdentity !== identity) return;
      const now = microTime(this.clock.now());
      const spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      try {
        this.current = await api.replaceLease({ ...lease, spec }, call());
        this.log.info({ lease: this.leaseName, identity }, 'lease released');
        return;
      } catch (error) {
        if (!isConflict(error) || this.clock.monotonic() >= deadline) {
          this.log.warn(
            { lease: this.leaseName, err: error },
            'lease not released; a standby takes it after the lease duration',
          );
          return;
        }
        try {
          this.current = await api.getLease(namespace, name, call());
        } catch (readError) {
          this.log.warn({ lease: this.leaseName, err: readError }, 'lease not released');
          return;
        }
      }
    }
  }

  /** The Lease field is whole seconds: rounded up, never shorter than asked. */
  private get leaseDurationSeconds(): number {
    return Math.ceil(this.options.leaseDurationMs / 1000);
  }

  private get leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }
}

function isConflict(error: unknown): boolean {
  return error instanceof KubeError && error.status === 409;
}
