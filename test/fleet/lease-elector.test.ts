// The Lease elector against the fake API server over HTTPS, time on a FakeClock: what
// happens to leaders — an empty lease, a holder that keeps renewing, a holder that is
// gone, two candidates writing at once, a wall clock stepped, a leader cut off from the
// API server while its standby still reaches it, a leader that stops. Each candidate
// has its own token, so the server can cut one off and tell their requests apart.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LeaseTimings, leaseTimingProblems, loadFleetConfig } from '../../src/config/fleet.ts';
import { LeaseElector } from '../../src/fleet/lease-elector.ts';
import { KubeApi, type KubeError } from '../../src/kube/api.ts';
import { microTime } from '../../src/kube/events.ts';
import type { Failure } from '../../src/testing/fake-kube-api-server.ts';
import { FakeClock, settle, waitFor } from '../support/fake-clock.ts';
import { type FakeKube, startFakeKube } from '../support/fake-kube-api.ts';
import { loggerWithLines } from '../support/log-lines.ts';

const NS = 'fleet';
const LEASE = 'tes-heartbeat-fleet';
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE}`;
/** client-go's defaults, the contract's. */
const TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Candidate {
  identity: string;
  token: string;
  elector: LeaseElector;
  /** Leadership started/stopped, at monotonic times. */
  events: { what: 'started' | 'stopped'; at: number }[];
  /** The signal of the latest leadership. */
  signal: AbortSignal | undefined;
  /** The candidate's Lease calls as answered: "GET", "PUT 409", "GET KUBE_ABORTED", … */
  calls: string[];
  /** API calls not yet answered. */
  inFlight: number;
  /** Cut off from the API server: the test does not wait for its answers. */
  cut: boolean;
  stop: AbortController;
  done: Promise<void>;
  logs: Record<string, unknown>[];
}

interface World {
  kube: FakeKube;
  clock: FakeClock;
  candidates: Candidate[];
  start(identity: string): Promise<Candidate>;
  /** Moves time forward by `ms`, letting every candidate that is not cut off finish its calls at each step. */
  drive(ms: number): Promise<void>;
  /** Cuts a candidate off from the API server (the server answers its token as `failure` says). */
  cutOff(candidate: Candidate, failure: Failure): void;
}

async function world(timings: LeaseTimings = TIMINGS): Promise<World> {
  const kube = await startFakeKube();
  const dir = await mkdtemp(path.join(tmpdir(), 'elector-'));
  cleanups.push(
    () => kube.close(),
    () => rm(dir, { recursive: true, force: true }),
  );
  const clock = new FakeClock();
  const candidates: Candidate[] = [];
  const idle = () => candidates.every((c) => c.inFlight === 0 || c.cut);

  const self: World = {
    kube,
    clock,
    candidates,
    async start(identity) {
      const token = `token-${identity}`;
      kube.server.addToken(token);
      const kubeconfig = path.join(dir, identity);
      await writeFile(kubeconfig, kube.server.kubeconfig(NS, { token }));
      const api = KubeApi.load({ kubeconfig });
      cleanups.push(() => api.close());
      const { log, lines: logs } = await loggerWithLines();
      const stop = new AbortController();
      // The real KubeApi, observed: the test waits for a candidate's answers before moving time.
      const observed =
        <A extends unknown[], R>(method: string, call: (...args: A) => Promise<R>) =>
        async (...args: A): Promise<R> => {
          candidate.inFlight++;
          try {
            const result = await call(...args);
            candidate.calls.push(method);
            return result;
          } catch (error) {
            const { status, code } = error as KubeError;
            candidate.calls.push(`${method} ${status ?? code}`);
            throw error;
          } finally {
            candidate.inFlight--;
          }
        };
      const candidate: Candidate = {
        identity,
        token,
        events: [],
        signal: undefined,
        calls: [],
        inFlight: 0,
        cut: false,
        stop,
        logs,
        done: Promise.resolve(),
        elector: new LeaseElector({
          api: {
            getLease: observed('GET', api.getLease.bind(api)),
            createLease: observed('POST', api.createLease.bind(api)),
            replaceLease: observed('PUT', api.replaceLease.bind(api)),
          },
          clock,
          log,
          namespace: NS,
          name: LEASE,
          identity,
          ...timings,
          onStartedLeading: (signal) => {
            candidate.signal = signal;
            candidate.events.push({ what: 'started', at: clock.monotonic() });
          },
          onStoppedLeading: () => candidate.events.push({ what: 'stopped', at: clock.monotonic() }),
        }),
      };
      candidates.push(candidate);
      candidate.done = candidate.elector.run(stop.signal);
      cleanups.push(async () => {
        stop.abort();
        kube.server.restore(token);
        await candidate.done;
      });
      await self.drive(0);
      return candidate;
    },
    async drive(ms) {
      const target = clock.monotonic() + ms;
      for (;;) {
        await waitFor(idle, 5_000, 'every candidate answered');
        await settle();
        if (!idle()) continue;
        const next = clock.pending()[0];
        if (next === undefined || clock.monotonic() + next > target) break;
        await clock.advance(next);
      }
      await clock.advance(target - clock.monotonic());
      await waitFor(idle, 5_000, 'every candidate answered');
      await settle();
    },
    cutOff(candidate, failure) {
      candidate.cut = true;
      kube.server.cutOff(candidate.token, failure);
    },
  };
  return self;
}

const leaseNow = (w: World) => w.kube.server.leases.get(NS, LEASE);
const leaders = (w: World) => w.candidates.filter((c) => c.elector.isLeader).map((c) => c.identity);

describe('taking the lease', () => {
  it('creates a missing lease at once, MicroTime stamps, and renews it every retry period without reading it', async () => {
    const w = await world();
    const a = await w.start('fleet-a');
    expect(leaders(w)).toEqual(['fleet-a']);
    expect(a.events).toEqual([{ what: 'started', at: w.clock.monotonic() }]);
    const created = leaseNow(w);
    expect(created?.spec).toEqual({
      holderIdentity: 'fleet-a',
      leaseDurationSeconds: 15,
      acquireTime: microTime(w.clock.now()),
      renewTime: microTime(w.clock.now()),
      leaseTransitions: 0,
    });
    expect(created?.spec.renewTime).toMatch(MICRO_TIME);

    await w.drive(2_000);
    const renewed = leaseNow(w);
    expect(renewed?.spec.renewTime).toBe(microTime(w.clock.now()));
    expect(renewed?.spec.acquireTime).toBe(created?.spec.acquireTime);
    expect(renewed?.metadata.resourceVersion).not.toBe(created?.metadata.resourceVersion);
    await w.drive(4_000);
    // Read once (404), created, then renewed by PUTs carrying the version it wrote last.
    expect(a.calls).toEqual(['GET 404', 'POST', 'PUT', 'PUT', 'PUT']);
    expect(a.signal?.aborted).toBe(false);
  });

  it('never takes a lease whose record keeps changing, whatever its timestamps say', async () => {
    const w = await world();
    // Stamped an hour ago by a machine whose clock is behind: only the change counts.
    const stale = microTime(w.clock.now() - 3_600_000);
    const renew = () =>
      w.kube.server.leases.set(NS, LEASE, {
        holderIdentity: 'fleet-old',
        leaseDurationSeconds: 15,
        renewTime: stale, // the same stamp every time: the resourceVersion alone changes
        leaseTransitions: 3,
      });
    renew();
    const b = await w.start('fleet-b');
    for (let i = 0; i < 20; i++) {
      await w.drive(2_000);
      renew();
    }
    expect(b.events).toEqual([]);
    expect(b.calls.every((c) => c === 'GET')).toBe(true);
    expect(b.calls.length).toBeGreaterThanOrEqual(20 / 1.2);
    expect(leaseNow(w)?.spec.holderIdentity).toBe('fleet-old');
  });

  it.each([
    { desc: 'stamped an hour ago', offsetMs: -3_600_000, wallStepMs: 0 },
    { desc: 'stamped an hour ahead', offsetMs: 3_600_000, wallStepMs: 0 },
    { desc: 'while the wall clock steps forward an hour', offsetMs: 0, wallStepMs: 3_600_000 },
  ])(
    'takes over the lease of a process that is gone a lease duration after it last saw it change ($desc)',
    async ({ offsetMs, wallStepMs }) => {
      const w = await world();
      w.kube.server.leases.set(NS, LEASE, {
        holderIdentity: 'fleet-gone',
        leaseDurationSeconds: 15,
        renewTime: microTime(w.clock.now() + offsetMs),
        leaseTransitions: 3,
      });
      w.clock.setRandom(...Array(20).fill(1)); // the longest waits: 1.2 retry periods
      const seenAt = w.clock.monotonic();
      const b = await w.start('fleet-b');
      w.clock.stepWall(wallStepMs);
      await w.drive(15_000 - 1);
      expect(b.events).toEqual([]);
      await w.drive(1 + 1.2 * TIMINGS.retryPeriodMs);
      expect(b.events.map((e) => e.what)).toEqual(['started']);
      const takenAfter = (b.events[0]?.at ?? 0) - seenAt;
      expect(takenAfter).toBeGreaterThanOrEqual(15_000);
      expect(takenAfter).toBeLessThanOrEqual(15_000 + 1.2 * TIMINGS.retryPeriodMs);
      expect(leaseNow(w)?.spec).toMatchObject({ holderIdentity: 'fleet-b', leaseTransitions: 4 });
    },
  );
});

describe('two candidates', () => {
  it('on a missing lease: one creates it, the other reads again and stays a standby', async () => {
    const w = await world();
    const [a, b] = await Promise.all([w.start('fleet-a'), w.start('fleet-b')]);
    await w.drive(30_000);
    expect(leaders(w)).toHaveLength(1);
    const [leader, standby] = a?.elector.isLeader ? [a, b] : [b, a];
    if (!leader || !standby) throw new Error('two candidates expected');
    expect(leaseNow(w)?.spec).toMatchObject({ holderIdentity: leader.identity, leaseTransitions: 0 });
    expect(standby.events).toEqual([]);
    // The standby's writes: at most the create it lost (409 AlreadyExists); after that, reads only.
    expect(standby.calls.filter((c) => c !== 'GET' && c !== 'GET 404')).toEqual(
      standby.calls.includes('POST 409') ? ['POST 409'] : [],
    );
    expect(w.kube.server.leases.writes.every((write) => write.holderIdentity === leader.identity)).toBe(true);
  });

  it('a write that lost the race (409 Conflict) is not retried: the loser reads again and finds the winner', async () => {
    const w = await world();
    w.kube.server.leases.set(NS, LEASE, { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 2 });
    // Another candidate writes between b's read and b's write.
    w.kube.server.failNext({ method: 'PUT', path: LEASE_PATH }, { status: 409, reason: 'Conflict' });
    const b = await w.start('fleet-b');
    expect(b.events).toEqual([]);
    w.kube.server.leases.set(NS, LEASE, {
      holderIdentity: 'fleet-a',
      leaseDurationSeconds: 15,
      renewTime: microTime(w.clock.now()),
      leaseTransitions: 3,
    });
    await w.drive(10_000);
    expect(b.events).toEqual([]);
    expect(b.calls.slice(0, 3)).toEqual(['GET', 'PUT 409', 'GET']);
    expect(b.calls.slice(3).every((c) => c === 'GET')).toBe(true);
  });
});

describe('the wall clock', () => {
  it('stepped ±10 min on the leader and the standby: the leader keeps the lease, no takeover', async () => {
    const w = await world();
    const a = await w.start('fleet-a');
    const b = await w.start('fleet-b');
    for (const step of [600_000, -600_000, -600_000, 600_000, 600_000]) {
      w.clock.stepWall(step);
      await w.drive(7_000);
    }
    expect(a.events.map((e) => e.what)).toEqual(['started']);
    expect(a.signal?.aborted).toBe(false);
    expect(b.events).toEqual([]);
    expect(b.calls.every((c) => c === 'GET')).toBe(true);
    // Renewed all along, every retry period; the stamps follow the stepped wall clock.
    expect(a.calls.filter((c) => c === 'PUT').length).toBe(Math.floor(35_000 / TIMINGS.retryPeriodMs));
    expect(leaseNow(w)?.spec).toMatchObject({ holderIdentity: 'fleet-a', leaseTransitions: 0 });
  });
});

describe('a leader that cannot renew', () => {
  it.each([
    { desc: 'its calls hang', failure: 'hang' as const },
    { desc: 'its calls are answered 503', failure: { status: 503 } },
    { desc: 'its connections drop', failure: 'drop' as const },
  ])(
    'stops at its renew deadline, before the standby can take the lease, and competes again ($desc)',
    async ({ failure }) => {
      const w = await world();
      const a = await w.start('fleet-a');
      const b = await w.start('fleet-b');
      await w.drive(5_000);
      // The last renewal that went through started here (a renews every retry period).
      const lastRenewal = w.clock.monotonic() - (w.clock.monotonic() % TIMINGS.retryPeriodMs);
      await w.drive(TIMINGS.retryPeriodMs - (w.clock.monotonic() - lastRenewal) - 1);
      w.cutOff(a, failure);
      await w.drive(30_000);

      const stopped = a.events.find((e) => e.what === 'stopped');
      const started = b.events.find((e) => e.what === 'started');
      if (!stopped || !started)
        throw new Error(`expected a takeover: ${JSON.stringify({ a: a.events, b: b.events })}`);
      expect(a.signal?.aborted).toBe(true);
      // At the deadline exactly, counted from the start of the last renewal that went through.
      expect(stopped.at).toBe(lastRenewal + TIMINGS.renewDeadlineMs);
      // The standby waits a whole lease duration after it last saw the record change, so the
      // old leader has been silent for at least lease duration − renew deadline.
      expect(started.at - stopped.at).toBeGreaterThanOrEqual(
        TIMINGS.leaseDurationMs - TIMINGS.renewDeadlineMs,
      );
      expect(started.at - lastRenewal).toBeLessThanOrEqual(
        TIMINGS.leaseDurationMs + 2.4 * TIMINGS.retryPeriodMs,
      );
      expect(leaders(w)).toEqual(['fleet-b']);

      // Back on the network, a competes again and finds b holding the lease. (A call that
      // hung runs into its timeout first, in real time: not worth the wait here.)
      if (failure === 'hang') return;
      w.kube.server.restore(a.token);
      a.cut = false;
      await w.drive(20_000);
      expect(leaders(w)).toEqual(['fleet-b']);
      expect(a.events.map((e) => e.what)).toEqual(['started', 'stopped']);
      expect(a.calls.at(-1)).toBe('GET');
    },
  );
});

describe('stopping', () => {
  it('a leader releases the lease; its standby takes it at its next try', async () => {
    const w = await world();
    const a = await w.start('fleet-a');
    const b = await w.start('fleet-b');
    await w.drive(3_000);
    a.stop.abort();
    await a.done;
    expect(a.signal?.aborted).toBe(true);
    expect(a.events.map((e) => e.what)).toEqual(['started', 'stopped']);
    expect(leaseNow(w)?.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    const releasedAt = w.clock.monotonic();
    await w.drive(1.2 * TIMINGS.retryPeriodMs);
    const started = b.events.find((e) => e.what === 'started');
    expect(started?.at).toBeLessThanOrEqual(releasedAt + 1.2 * TIMINGS.retryPeriodMs);
    expect(leaseNow(w)?.spec).toMatchObject({ holderIdentity: 'fleet-b', leaseTransitions: 1 });
  });

  it('a standby writes nothing when it stops', async () => {
    const w = await world();
    await w.start('fleet-a');
    const b = await w.start('fleet-b');
    const before = leaseNow(w);
    b.stop.abort();
    await b.done;
    expect(b.calls.every((c) => c === 'GET')).toBe(true);
    expect(leaseNow(w)).toEqual(before);
  });
});

describe('timings', () => {
  it.each([
    { desc: 'client-go defaults', timings: TIMINGS, problems: 0 },
    {
      desc: 'short ones for tests',
      timings: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 },
      problems: 0,
    },
    { desc: 'duration not above deadline', timings: { ...TIMINGS, leaseDurationMs: 10_000 }, problems: 1 },
    { desc: 'deadline not above 1.2 × retry', timings: { ...TIMINGS, retryPeriodMs: 9_000 }, problems: 1 },
    {
      desc: 'everything backwards',
      timings: { leaseDurationMs: 2_000, renewDeadlineMs: 10_000, retryPeriodMs: 15_000 },
      problems: 2,
    },
    { desc: 'no retry period', timings: { ...TIMINGS, retryPeriodMs: 0 }, problems: 1 },
  ])('$desc: $problems problem(s), and the constructor refuses any', ({ timings, problems }) => {
    expect(leaseTimingProblems(timings)).toHaveLength(problems);
    const construct = () =>
      new LeaseElector({
        api: {} as never,
        clock: new FakeClock(),
        log: {} as never,
        namespace: NS,
        name: LEASE,
        identity: 'fleet-a',
        ...timings,
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
      });
    if (problems === 0) expect(construct).not.toThrow();
    else expect(construct).toThrow(/lease elector: the /);
  });

  it.each([
    { desc: 'the defaults', env: {}, named: [] },
    { desc: 'duration = deadline', env: { FLEET_LEASE_DURATION: '10s' }, named: ['FLEET_LEASE_DURATION'] },
    { desc: 'deadline = 1.2 × retry', env: { FLEET_RETRY_PERIOD: '8.5s' }, named: ['FLEET_RENEW_DEADLINE'] },
    {
      desc: 'deadline between retry and 1.2 × retry',
      env: { FLEET_RENEW_DEADLINE: '2.2s', FLEET_RETRY_PERIOD: '2s' },
      named: ['FLEET_RENEW_DEADLINE'],
    },
  ])('the settings refuse what the elector would (exit 2, naming the variable): $desc', ({ env, named }) => {
    const loaded = loadFleetConfig([], {
      TES_URL: 'https://tes.example',
      POD_NAME: 'fleet-a',
      POD_NAMESPACE: NS,
      ...env,
    });
    const problems = loaded.kind === 'invalid' ? loaded.problems : [];
    expect(problems.map((p) => p.split(' ')[0])).toEqual(named);
    if (loaded.kind === 'ok') {
      const { durationMs: leaseDurationMs, renewDeadlineMs, retryPeriodMs } = loaded.config.lease;
      expect(leaseTimingProblems({ leaseDurationMs, renewDeadlineMs, retryPeriodMs })).toEqual([]);
    }
  });
});
