// The per-cluster scope with two or three built `fleet` processes on one Lease (contract:
// Fleet mode, Scope → per cluster). Each process has its own Kubernetes token (the fake
// API server can cut one off) and its own TES token (the TES tells the senders apart).
// Short timings — lease 3 s, renew deadline 2 s, retry 0.5 s — so the contract's bounds
// are seconds: takeover after kill -9 within lease duration + 2.5 × retry (4.25 s), after
// SIGTERM within about two retry periods, first heartbeats within 2 s of taking the lease.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import {
  COMPLETED_STATUS,
  fleetPod,
  type FleetProcess,
  type FleetWorld,
  fleetWorlds,
  markOf,
  RUNNING_STATUS,
} from '../support/fleet-harness.ts';

const world = fleetWorlds();
const NS = 'fleet';
const LEASE = 'tes-heartbeat-fleet';
/**
 * Lease duration / renew deadline / retry period in ms. FLEET_CLUSTER_TEST_TIMINGS (e.g.
 * `15000/10000/2000`, the defaults) measures the failover at other timings; the bounds follow.
 */
const [D, DEADLINE, R] = (process.env.FLEET_CLUSTER_TEST_TIMINGS ?? '3000/2000/500')
  .split('/')
  .map(Number) as [number, number, number];
/** Each test waits a few lease durations at most. */
const TEST_TIMEOUT = 20_000 + 3 * D;
const INTERVAL = 1_000;
/** Slack for a loaded two-core machine: process scheduling, not the algorithm. */
const SLACK = 1_000;
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

interface Member extends FleetProcess {
  name: string;
  token: string;
}

async function cluster(w: FleetWorld) {
  const dir = await mkdtemp(path.join(tmpdir(), 'fleet-cluster-'));
  const members: Member[] = [];
  return {
    members,
    async start(name: string, env: Record<string, string> = {}): Promise<Member> {
      const token = `kube-${name}`;
      w.kube.server.addToken(token);
      const kubeconfig = path.join(dir, name);
      await writeFile(kubeconfig, w.kube.server.kubeconfig(NS, { token }), { mode: 0o600 });
      const process = await w.fleet({
        KUBECONFIG: kubeconfig,
        POD_NAME: name,
        POD_NAMESPACE: NS,
        FLEET_NODE_NAME: '',
        TES_TOKEN: `tes-${name}`,
        HEARTBEAT_INTERVAL: `${INTERVAL}ms`,
        FLEET_LEASE_DURATION: `${D}ms`,
        FLEET_RENEW_DEADLINE: `${DEADLINE}ms`,
        FLEET_RETRY_PERIOD: `${R}ms`,
        ...env,
      });
      const member = Object.assign(process, { name, token });
      members.push(member);
      return member;
    },
    /** The member that sent a TES request. */
    senderOf(authorization: string | undefined): string {
      return authorization?.replace(/^Bearer tes-/, '') ?? '?';
    },
    /** fleet-a started and leading, then fleet-b started and ready as its standby. */
    async leaderAndStandby(leaderEnv: Record<string, string> = {}): Promise<{ a: Member; b: Member }> {
      const a = await this.start('fleet-a', leaderEnv);
      await leading(a);
      const b = await this.start('fleet-b');
      await ready(b);
      return { a, b };
    },
    holder: () => w.kube.server.leases.get(NS, LEASE)?.spec.holderIdentity,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Who sent, in TES arrival order, with repeats folded: ['a', 'b'] is one handover. */
function senders(w: FleetWorld, c: Awaited<ReturnType<typeof cluster>>): string[] {
  const order: string[] = [];
  for (const request of w.tes.requests) {
    const sender = c.senderOf(request.authorization);
    if (order.at(-1) !== sender) order.push(sender);
  }
  return order;
}

/** Each run's longest silence at the TES, in ms, between two of its heartbeats. */
function longestGaps(w: FleetWorld): Map<string, number> {
  const last = new Map<string, number>();
  const gaps = new Map<string, number>();
  for (const request of w.tes.requests) {
    const previous = last.get(request.runId);
    if (previous !== undefined)
      gaps.set(request.runId, Math.max(gaps.get(request.runId) ?? 0, request.at - previous));
    last.set(request.runId, request.at);
  }
  return gaps;
}

const finalsPerRun = (w: FleetWorld) => {
  const finals = new Map<string, number>();
  for (const r of w.tes.requests)
    if (r.body.lastHeartbeat) finals.set(r.runId, (finals.get(r.runId) ?? 0) + 1);
  return finals;
};

/** /readyz answers 200 (the listener may not be up yet). */
async function ready(member: Member): Promise<void> {
  await waitFor(
    () =>
      member.get('/readyz').then(
        (r) => r.status === 200,
        () => false,
      ),
    10_000,
    `${member.name} ready`,
  ).catch((error: Error) => {
    throw new Error(`${error.message}:\n${member.stdout().slice(-3000)}${member.stderr()}`);
  });
}

/** A log line of `member`, or an error after `ms` showing what it said. */
async function said(member: Member, msg: string, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      member.logged(msg),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${member.name} did not log "${msg}":\n${member.stdout().slice(-3000)}${member.stderr()}`,
              ),
            ),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const leading = (member: Member) => said(member, 'leading: this process holds the lease');

const report = (what: string, ms: number) =>
  process.stdout.write(`[fleet-cluster] ${what}: ${Math.round(ms)} ms\n`);

describe('the per-cluster scope', { timeout: TEST_TIMEOUT }, () => {
  it('one sender at a time; a standby is ready and warm; kill -9 of the leader: a standby takes over within lease duration + 2.5 × retry, runs resume within 2 s, one final per run', async () => {
    const w = await world();
    const c = await cluster(w);
    for (const name of ['p1', 'p2', 'p3'])
      w.kube.server.set('pods', fleetPod({ name, status: RUNNING_STATUS }));
    const a = await c.start('fleet-a');
    await leading(a);
    const [b, d] = [await c.start('fleet-b'), await c.start('fleet-c')];
    await ready(b);
    await ready(d);
    expect((await b.get('/metrics')).body).toMatch(/^tes_fleet_leader 0$/m);
    expect((await a.get('/metrics')).body).toMatch(/^tes_fleet_leader 1$/m);
    // A run completes under the first leader: its final, then its mark.
    await waitFor(() => w.beats('run-p1').length >= 2, 10_000, 'beats from the leader');
    w.kube.server.set('pods', fleetPod({ name: 'p1', status: COMPLETED_STATUS }));
    await waitFor(() => finalsPerRun(w).get('run-p1') === 1, 10_000, 'the final of p1');
    await waitFor(
      () =>
        (
          w.kube.server.get('pods', 'tasks', 'p1')?.metadata?.annotations as
            | Record<string, string>
            | undefined
        )?.['tes-heartbeat/final-heartbeat'],
      10_000,
      'the mark of p1',
    );
    await new Promise((r) => setTimeout(r, 2 * INTERVAL));

    const killedAt = performance.now();
    a.child.kill('SIGKILL');
    const takenAt = await waitFor(
      () => (c.holder() !== 'fleet-a' ? performance.now() : 0),
      3 * D + 5_000,
      'a new holder',
    );
    const successor = c.members.find((m) => m.name === c.holder());
    if (!successor) throw new Error(`unexpected holder ${c.holder()}`);
    const firstBeat = await waitFor(
      () =>
        w.tes.requests.find((r) => r.at > killedAt && c.senderOf(r.authorization) === successor.name)?.at ??
        0,
      10_000,
      'the first heartbeat of the new leader',
    );
    report('kill -9 → lease taken', takenAt - killedAt);
    report('kill -9 → first heartbeat of the new leader', firstBeat - killedAt);
    // The standby waited a whole lease duration after the dead leader's last renewal (server times).
    const writes = w.kube.server.leases.writes;
    const lastRenewal = writes.filter((write) => write.holderIdentity === 'fleet-a').at(-1);
    const taken = writes.find((write) => write.holderIdentity === successor.name);
    expect((taken?.at ?? 0) - (lastRenewal?.at ?? 0)).toBeGreaterThanOrEqual(D);
    expect(takenAt - killedAt).toBeLessThanOrEqual(D + 2.5 * R + SLACK);
    expect(firstBeat - takenAt).toBeLessThanOrEqual(2_000);

    // A run completing under the new leader: exactly one final, from it.
    await waitFor(() => w.beats('run-p2').filter((b) => !b.lastHeartbeat).length >= 1, 5_000, 'p2 again');
    w.kube.server.set('pods', fleetPod({ name: 'p2', status: COMPLETED_STATUS }));
    await waitFor(() => finalsPerRun(w).get('run-p2') === 1, 10_000, 'the final of p2');
    await new Promise((r) => setTimeout(r, 2 * INTERVAL));

    expect(senders(w, c)).toEqual(['fleet-a', successor.name]);
    expect(finalsPerRun(w)).toEqual(
      new Map([
        ['run-p1', 1],
        ['run-p2', 1],
      ]),
    );
    // No run paused longer than the takeover (plus the interval its last beat could precede the kill by).
    const pause = Math.max(...longestGaps(w).values());
    report('longest pause of a run across the failover', pause);
    expect(pause).toBeLessThanOrEqual(firstBeat - killedAt + INTERVAL * 1.1 + 500);
    await c.cleanup();
  });

  it('SIGTERM: the leader releases the lease and exits 0; a standby takes over within about two retry periods', async () => {
    const w = await world();
    const c = await cluster(w);
    w.kube.server.set('pods', fleetPod({ name: 'p1', status: RUNNING_STATUS }));
    const { a } = await c.leaderAndStandby();
    await waitFor(() => w.beats('run-p1').length >= 2, 10_000, 'beats');
    const termAt = performance.now();
    a.child.kill('SIGTERM');
    const takenAt = await waitFor(
      () => (c.holder() === 'fleet-b' ? performance.now() : 0),
      10_000,
      'fleet-b holds the lease',
    );
    const exit = await Promise.race([
      a.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`fleet-a did not exit:\n${a.stdout().slice(-4000)}`)), 5_000),
      ),
    ]);
    expect(exit.code).toBe(0);
    const firstBeat = await waitFor(
      () => w.tes.requests.find((r) => r.at > termAt && c.senderOf(r.authorization) === 'fleet-b')?.at ?? 0,
      10_000,
      'the first heartbeat of fleet-b',
    );
    report('SIGTERM → lease taken', takenAt - termAt);
    report('SIGTERM → first heartbeat of the new leader', firstBeat - termAt);
    // Released at once (empty holder), taken at the standby's next try: ≤ 1.2 retry periods.
    expect(w.kube.server.leases.writes.some((write) => write.holderIdentity === '')).toBe(true);
    expect(takenAt - termAt).toBeLessThanOrEqual(2 * R + SLACK / 2);
    expect(senders(w, c)).toEqual(['fleet-a', 'fleet-b']);
    expect(finalsPerRun(w).size).toBe(0); // a fleet's SIGTERM sends no final for running runs
    await c.cleanup();
  });

  it('SIGTERM with a final in flight: the leader finishes it and its mark, then releases; the standby sends no second final', async () => {
    const w = await world();
    const c = await cluster(w);
    w.kube.server.set('pods', fleetPod({ name: 'p1', status: RUNNING_STATUS }));
    const { a } = await c.leaderAndStandby();
    await waitFor(() => w.beats('run-p1').length >= 1, 10_000, 'beats');
    w.tes.setRunReply('run-p1', { status: 200, body: {}, afterMs: 1_500 });
    w.kube.server.set('pods', fleetPod({ name: 'p1', status: COMPLETED_STATUS }));
    await waitFor(() => finalsPerRun(w).get('run-p1') === 1, 10_000, 'the final arrives');
    a.child.kill('SIGTERM'); // while the TES has not answered it yet
    await waitFor(() => c.holder() === 'fleet-b', 10_000, 'fleet-b holds the lease');
    expect((await a.exited).code).toBe(0);
    expect(markOf(w.kube.server.get('pods', 'tasks', 'p1'))).toMatch(/ sent$/);
    // The release came after the final was answered and marked (the API server's arrival order).
    expect(w.kube.server.leases.writes.some((write) => write.holderIdentity === '')).toBe(true);
    const requests = w.kube.server.requests;
    const marked = requests.findIndex(
      (r) => r.token === a.token && r.method === 'PATCH' && r.path.endsWith('/pods/p1'),
    );
    const released = requests.findLastIndex((r) => r.token === a.token && r.method === 'PUT');
    expect(marked).toBeGreaterThanOrEqual(0);
    expect(released).toBeGreaterThan(marked);
    const final = w.tes.requests.find((r) => r.body.lastHeartbeat);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL));
    expect(finalsPerRun(w)).toEqual(new Map([['run-p1', 1]]));
    expect(c.senderOf(final?.authorization)).toBe('fleet-a');
    expect(w.tes.requests.filter((r) => c.senderOf(r.authorization) === 'fleet-b')).toEqual([]);
  });

  it('a leader cut off from the API server falls silent before the standby sends anything', async () => {
    const w = await world();
    const c = await cluster(w);
    for (const name of ['p1', 'p2']) w.kube.server.set('pods', fleetPod({ name, status: RUNNING_STATUS }));
    const { a } = await c.leaderAndStandby();
    await waitFor(() => w.beats('run-p1').length >= 2, 10_000, 'beats');
    const cutAt = performance.now();
    w.kube.server.cutOff(a.token, 'hang');
    await said(a, 'leadership ended', DEADLINE + 10_000);
    const firstB = await waitFor(
      () => w.tes.requests.find((r) => c.senderOf(r.authorization) === 'fleet-b'),
      3 * D + 5_000,
      'the standby sends',
    );
    if (!firstB) throw new Error('fleet-b never sent');
    const lastA = w.tes.requests.filter((r) => c.senderOf(r.authorization) === 'fleet-a').at(-1);
    if (!lastA) throw new Error('fleet-a never sent');
    report('cut off → first heartbeat of the new leader', firstB.at - cutAt);
    report('last heartbeat of the cut-off leader → first of the new leader', firstB.at - lastA.at);
    expect(lastA.at).toBeLessThan(firstB.at);
    // And nothing from the old leader after that, while it stays cut off and after it is back.
    await new Promise((r) => setTimeout(r, 2 * INTERVAL));
    w.kube.server.restore(a.token);
    await new Promise((r) => setTimeout(r, D));
    expect(senders(w, c)).toEqual(['fleet-a', 'fleet-b']);
    expect(c.holder()).toBe('fleet-b');
    expect((await a.get('/metrics')).body).toMatch(/^tes_fleet_leader 0$/m);
    await c.cleanup();
  });

  it('a lost node (Ready Unknown): nothing for its pods, finals included, until it reports again', async () => {
    const w = await world();
    const c = await cluster(w);
    w.kube.server.set('nodes', { metadata: { name: 'node-2' } });
    w.kube.server.setNodeReady('node-2', 'True');
    w.kube.server.set('pods', fleetPod({ name: 'here', status: RUNNING_STATUS }));
    w.kube.server.set('pods', fleetPod({ name: 'lost', nodeName: 'node-2', status: RUNNING_STATUS }));
    const a = await c.start('fleet-a');
    await leading(a);
    await waitFor(() => w.beats('run-lost').length >= 1, 10_000, 'beats on node-2');
    w.kube.server.setNodeReady('node-2', 'Unknown');
    await said(a, 'node lost (Ready Unknown): nothing is sent for its pods');
    const lostAt = performance.now();
    w.kube.server.set('pods', fleetPod({ name: 'lost', nodeName: 'node-2', status: COMPLETED_STATUS }));
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    expect(w.tes.requests.filter((r) => r.runId === 'run-lost' && r.at > lostAt)).toEqual([]);
    expect(
      w.tes.requests.filter((r) => r.runId === 'run-here' && r.at > lostAt).length,
    ).toBeGreaterThanOrEqual(2);
    w.kube.server.setNodeReady('node-2', 'True');
    await waitFor(() => finalsPerRun(w).get('run-lost') === 1, 10_000, 'the final once node-2 reports');
    expect(w.beats('run-lost').at(-1)?.lastHeartbeat).toBe(true);
    await c.cleanup();
  });

  it.skipIf(!existsSync(LIBFAKETIME))(
    "the leader's wall clock stepped ±10 min (libfaketime): it keeps the lease, no takeover",
    async () => {
      const w = await world();
      const c = await cluster(w);
      const dir = await mkdtemp(path.join(tmpdir(), 'faketime-'));
      const offset = path.join(dir, 'offset');
      await writeFile(offset, '+0');
      w.kube.server.set('pods', fleetPod({ name: 'p1', status: RUNNING_STATUS }));
      const { a } = await c.leaderAndStandby({
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offset,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
      for (const step of ['-600', '+600']) {
        await writeFile(offset, step);
        await new Promise((r) => setTimeout(r, D + R));
      }
      expect(c.holder()).toBe('fleet-a');
      expect(w.kube.server.leases.writes.every((write) => write.holderIdentity === 'fleet-a')).toBe(true);
      expect(senders(w, c)).toEqual(['fleet-a']);
      expect(a.logs.filter((l) => l.msg === 'leadership ended')).toEqual([]);
      // It stamped its renewals with its stepped clock: the standby never compared them with its own.
      await rm(dir, { recursive: true, force: true });
      await c.cleanup();
    },
  );
});
