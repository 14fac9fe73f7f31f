// The heartbeat loop against a real TES client and a fault-injecting TES over
// loopback HTTP, with time under the test's control (contract policy rules 1–9).
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { RunBearer, TokenSource } from '../../src/engine/bearer.ts';
import { HeartbeatLoop } from '../../src/heartbeat/loop.ts';
import { AgentMetrics } from '../../src/http/agent-metrics.ts';
import { createLogger } from '../../src/log.ts';
import { Secrets } from '../../src/secrets.ts';
import { TesClient } from '../../src/tes/client.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { FakeClock, waitFor } from '../support/fake-clock.ts';
import { FaultTes } from '../support/fault-tes.ts';

const TIMEOUT_MS = 7_777; // distinct from every policy delay, to tell the sleeps apart
const TOKEN = 'static-token-9a8b7c';
const NONCE = 'nonce-5e6f7a';

interface Harness {
  tes: FaultTes;
  clock: FakeClock;
  loop: HeartbeatLoop;
  metrics: AgentMetrics;
  logs: string[];
  /** Mutable snapshot the body and signature are built from. */
  snapshot: { state: string };
  /** Most sends ever in flight at once, seen from the agent's side. */
  overlap: () => number;
  done: Promise<unknown>;
  tokenFile: string;
  jwtFile: string;
  /** Waits until the loop sleeps with nothing in flight, then returns its pending sleeps. */
  idle(): Promise<number[]>;
}

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    h.loop.end('signal');
    // Let a hanging final attempt time out on the fake clock.
    for (let i = 0; i < 20 && !(await isSettled(h.done)); i++) await h.clock.advance(TIMEOUT_MS);
    await h.tes.close();
  }
});

async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return settled;
}

async function start(
  options: { intervalMs?: number; minGapMs?: number; finalDeadlineMs?: number; run?: boolean } = {},
): Promise<Harness> {
  const tes = await new FaultTes().start();
  const clock = new FakeClock();
  const dir = await mkdtemp(path.join(tmpdir(), 'loop-'));
  const tokenFile = path.join(dir, 'token');
  const jwtFile = path.join(dir, 'jwt');
  await writeFile(tokenFile, `${TOKEN}\n`);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const secrets = new Secrets([NONCE]);
  const log = await createLogger(
    { level: 'debug', format: 'json', base: { runId: 'run-1', podName: 'pod-1' }, secrets },
    sink,
  );
  const tokens = new TokenSource({ log, secrets, tokenFile, tokenFileContent: TOKEN });
  const bearer = new RunBearer({ tokens, log, secrets, jwtFile });
  const client = new TesClient({ baseUrl: tes.url, timeoutMs: TIMEOUT_MS, clock });
  const metrics = new AgentMetrics();
  const snapshot = { state: 'waiting' };
  let inFlight = 0;
  let maxInFlight = 0;
  const loop = new HeartbeatLoop({
    clock,
    log,
    intervalMs: options.intervalMs ?? 30_000,
    minGapMs: options.minGapMs ?? 1_000,
    finalDeadlineMs: options.finalDeadlineMs ?? 10_000,
    body: (last): HeartbeatTaskRunRequest => ({
      podName: 'pod-1',
      nonce: NONCE,
      jobRetryCount: 0,
      containerStatus: [{ name: 'task', state: { waiting: { reason: snapshot.state } } }],
      ...(last ? { lastHeartbeat: true } : {}),
    }),
    signature: () => snapshot.state,
    send: async (body, token, signal) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await client.heartbeatTaskRun('run-1', body, { ...(token ? { token } : {}), signal });
      } finally {
        inFlight--;
      }
    },
    bearer,
    resetConnections: () => client.resetConnections(),
    observer: metrics,
  });
  const h: Harness = {
    tes,
    clock,
    loop,
    metrics,
    logs,
    snapshot,
    overlap: () => maxInFlight,
    done: Promise.resolve(),
    tokenFile,
    jwtFile,
    idle: async () => {
      await waitFor(
        () => inFlight === 0 && clock.pending().length > 0 && !clock.pending().includes(TIMEOUT_MS),
        5_000,
        'loop idle',
      );
      return clock.pending();
    },
  };
  if (options.run !== false) h.done = loop.run();
  harnesses.push(h);
  return h;
}

const states = (h: Harness) => h.tes.requests.map((r) => r.body.containerStatus?.[0]?.state?.waiting?.reason);
const policySleeps = (clock: FakeClock) => clock.requestedSleeps.filter((ms) => ms !== TIMEOUT_MS);

async function metric(h: Harness, name: string): Promise<number> {
  const { body } = await h.metrics.render();
  const line = body.split('\n').find((l) => l.startsWith(name));
  return Number(line?.split(' ').pop());
}

describe('rule 1 and 2: first heartbeat at once, then periodic with jitter', () => {
  it('sends the first heartbeat without any time passing', async () => {
    const h = await start();
    await waitFor(() => h.tes.requests.length === 1);
    expect(h.clock.requestedSleeps).not.toContain(30_000 * 0.9);
    expect(h.tes.requests[0]?.body.lastHeartbeat).toBeUndefined();
  });

  it.each([
    { desc: 'no jitter at random 0.5', random: 0.5, expected: 30_000 },
    { desc: '−10% at random 0', random: 0, expected: 27_000 },
    { desc: '+10% at random → 1', random: 0.9999, expected: 32_999.4 },
  ])('waits interval ± 10% after the previous start: $desc', async ({ random, expected }) => {
    const h = await start({ run: false });
    h.clock.setRandom(random);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    expect((await h.idle())[0]).toBeCloseTo(expected, 3);
    await h.clock.advance(expected - 1);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
  });
});

describe('rule 3: at once on a state change, never inside the minimum gap', () => {
  it('coalesces changes inside the gap into one heartbeat with the latest state', async () => {
    const h = await start({ minGapMs: 1_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    await h.clock.advance(200);
    h.snapshot.state = 'ContainerCreating';
    h.loop.podUpdated();
    expect(await h.idle()).toContain(800);
    await h.clock.advance(300);
    h.snapshot.state = 'Running';
    h.loop.podUpdated();
    await h.idle();
    await h.clock.advance(499);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    expect(states(h)).toEqual(['waiting', 'Running']);
  });

  it('sends at once when the gap has passed, and not at all when nothing reported changed', async () => {
    const h = await start({ minGapMs: 1_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    await h.clock.advance(5_000);
    h.loop.podUpdated(); // same signature: no heartbeat
    await h.idle();
    expect(h.tes.requests).toHaveLength(1);
    h.snapshot.state = 'Terminated';
    h.loop.podUpdated();
    await waitFor(() => h.tes.requests.length === 2);
    expect(states(h)).toEqual(['waiting', 'Terminated']);
  });
});

describe('rule 4 and 5: one at a time, retries with backoff', () => {
  it('backs off with full jitter, about 1 s doubling, and builds each attempt from the newest snapshot', async () => {
    const h = await start({ run: false });
    h.tes.reply({ status: 503 }, { status: 500 }, { status: 200, body: {} });
    h.clock.setRandom(0.5, 0.25, 0.75);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    h.snapshot.state = 'Running';
    await h.clock.advance(250); // 0.25 × 1000
    await waitFor(() => h.tes.requests.length === 2);
    await h.clock.advance(1_500); // 0.75 × 2000
    await waitFor(() => h.tes.requests.length === 3);
    expect(policySleeps(h.clock).slice(0, 2)).toEqual([250, 1_500]);
    expect(states(h)).toEqual(['waiting', 'Running', 'Running']);
    await h.idle(); // the server saw the request; let the loop take the answer
    expect(await metric(h, 'tes_heartbeat_attempts_total')).toBe(3);
    expect(await metric(h, 'tes_heartbeats_total{result="success"}')).toBe(1);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(0);
  });

  it('honours Retry-After in seconds and as an HTTP date', async () => {
    const h = await start();
    h.tes.reply(
      { status: 503, headers: { 'retry-after': '3' } },
      { status: 429, headers: { 'retry-after': new Date(h.clock.now() + 3_000 + 5_000).toUTCString() } },
    );
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    expect(policySleeps(h.clock)).toContain(3_000);
    await h.clock.advance(3_000);
    await waitFor(() => h.tes.requests.length === 2);
    await h.idle();
    expect(policySleeps(h.clock)).toContain(5_000);
    await h.clock.advance(5_000);
    await waitFor(() => h.tes.requests.length === 3);
  });

  it('stops retrying when the next periodic heartbeat is due, counting one failure, and holds the next one for the Retry-After', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.setFallback({ status: 503, headers: { 'retry-after': '4' } });
    await waitFor(() => h.tes.requests.length === 1);
    for (const expected of [2, 3]) {
      await h.idle();
      await h.clock.advance(4_000);
      await waitFor(() => h.tes.requests.length === expected);
    }
    // A retry at 12 s would pass the next heartbeat at 10 s: that one takes over,
    // held back until the Retry-After has passed.
    expect((await h.idle())[0]).toBe(4_000);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(1);
    expect(await metric(h, 'tes_heartbeat_attempts_total')).toBe(3);
    h.tes.setFallback({ status: 200, body: {} });
    await h.clock.advance(3_999);
    expect(h.tes.requests).toHaveLength(3);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 4);
    await h.idle();
    expect(await metric(h, 'tes_heartbeats_total{result="success"}')).toBe(1);
  });

  it('holds every heartbeat but the final one for a Retry-After past the next one, at most 5 minutes', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({ status: 429, headers: { 'retry-after': '3600' } });
    await waitFor(() => h.tes.requests.length === 1);
    // The loop sleeps in pieces (it ticks for /healthz), so the hold shows as time, not as one sleep.
    await h.idle();
    await h.clock.advance(100_000);
    h.snapshot.state = 'Running';
    h.loop.podUpdated(); // a change does not jump the hold either
    await h.idle();
    await h.clock.advance(199_999);
    expect(h.tes.requests).toHaveLength(1);
    h.loop.end('signal');
    await waitFor(() => h.tes.requests.length === 2);
    expect(h.tes.requests[1]?.body.lastHeartbeat).toBe(true);
    await h.done;
  });

  it('does not retry other 4xx: logs the status and the service error, and goes on', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({
      status: 400,
      body: { code: 'InvalidHeartbeat', message: 'podName too long', details: [] },
    });
    await waitFor(() => h.tes.requests.length === 1);
    expect((await h.idle())[0]).toBe(10_000);
    const error = h.logs.map((l) => JSON.parse(l)).find((l) => l.level === 50);
    expect(error).toMatchObject({ status: 400, runId: 'run-1', podName: 'pod-1' });
    expect(JSON.stringify(error)).toContain('InvalidHeartbeat');
    expect(JSON.stringify(error)).toContain('podName too long');
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length === 2);
  });

  it('never has two requests in flight under slow and failing answers', async () => {
    const h = await start({ intervalMs: 10_000, minGapMs: 0 });
    h.tes.reply({ hang: true }, { status: 503 }, { hang: true }, { drop: true }, { status: 502 });
    h.clock.setRandom(0.5, 0, 0, 0, 0, 0, 0, 0);
    await waitFor(() => h.tes.requests.length === 1);
    // Changes keep coming while time moves on, until the five scripted bad answers and a
    // good one have been seen; the real I/O sets the pace, not the loop's count.
    let i = 0;
    await waitFor(
      async () => {
        h.snapshot.state = `s${i++}`;
        h.loop.podUpdated();
        await h.clock.advance(1_000);
        return h.tes.requests.length >= 6;
      },
      15_000,
      'six requests',
    );
    expect(h.overlap()).toBe(1);
    expect(h.tes.maxInFlight).toBe(1);
  });
});

describe('rule 5 and 6: 401, jwt rotation, token file', () => {
  it('uses a rotated jwt, writes it atomically with mode 0600, and keeps it over a changed token file', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({ status: 200, body: { jwt: 'jwt-one-1a2b' } });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    expect(h.tes.requests[0]?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(await readFile(h.jwtFile, 'utf8')).toBe('jwt-one-1a2b');
    expect((await stat(h.jwtFile)).mode & 0o777).toBe(0o600);
    await writeFile(h.tokenFile, 'file-token-two');
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length === 2);
    expect(h.tes.requests[1]?.authorization).toBe('Bearer jwt-one-1a2b');
  });

  it('on a 401 drops the jwt, re-reads the token file and retries once at once', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({ status: 200, body: { jwt: 'jwt-old-3c4d' } }, { status: 401 }, { status: 200, body: {} });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    await writeFile(h.tokenFile, 'file-token-new');
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length === 3);
    expect(h.tes.requests.map((r) => r.authorization)).toEqual([
      `Bearer ${TOKEN}`,
      'Bearer jwt-old-3c4d',
      'Bearer file-token-new',
    ]);
    expect(policySleeps(h.clock)).toContain(0);
  });

  it('a second 401 in a row is not retried', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({ status: 401 }, { status: 401 });
    await waitFor(() => h.tes.requests.length === 2);
    expect((await h.idle())[0]).toBeLessThanOrEqual(10_000);
    expect(h.tes.requests).toHaveLength(2);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(1);
  });
});

describe('rule 8: the end', () => {
  it('a signal before the first heartbeat makes the final heartbeat the only one', async () => {
    const h = await start({ run: false });
    h.loop.end('signal');
    h.done = h.loop.run();
    await h.done;
    expect(h.tes.requests.map((r) => r.body.lastHeartbeat)).toEqual([true]);
  });

  it('awaits the attempt in flight without retrying it, then sends the final heartbeat once', async () => {
    const h = await start();
    h.tes.reply({ hang: true });
    await waitFor(() => h.tes.requests.length === 1);
    h.loop.end('signal');
    h.loop.end('pod-deleted');
    await h.clock.advance(TIMEOUT_MS);
    await h.done;
    expect(h.tes.requests.map((r) => r.body.lastHeartbeat)).toEqual([undefined, true]);
    expect(h.overlap()).toBe(1);
  });

  it('counts an attempt that succeeds while the end comes as a success, and keeps its jwt', async () => {
    const h = await start();
    h.tes.reply({ status: 200, body: { jwt: 'jwt-late-9z' }, afterMs: 150 });
    await waitFor(() => h.tes.requests.length === 1);
    h.loop.end('signal');
    await h.done;
    expect(h.tes.requests.map((r) => r.body.lastHeartbeat)).toEqual([undefined, true]);
    expect(h.tes.requests[1]?.authorization).toBe('Bearer jwt-late-9z');
    expect(await metric(h, 'tes_heartbeats_total{result="success"}')).toBe(2);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(0);
  });

  it('stops the retries of a failing heartbeat when the end comes, then sends the final one', async () => {
    const h = await start({ run: false });
    h.tes.reply({ status: 503 }, { status: 200, body: {} });
    h.clock.setRandom(0.5, 0.9);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    expect(await h.idle()).toContain(900); // the backoff before the retry
    h.loop.end('signal');
    await h.done;
    expect(h.tes.requests.map((r) => r.body.lastHeartbeat)).toEqual([undefined, true]);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(1);
  });

  it('retries the final heartbeat with its own Retry-After until the deadline, then gives up', async () => {
    const h = await start({ finalDeadlineMs: 10_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    h.tes.setFallback({ status: 503, headers: { 'retry-after': '3' } });
    h.loop.end('complete');
    for (const expected of [2, 3, 4, 5]) {
      await waitFor(() => h.tes.requests.length === expected);
      if (expected < 5) {
        await h.idle();
        await h.clock.advance(3_000);
      }
    }
    await h.done; // 12 s would pass the 10 s deadline
    expect(h.tes.requests.slice(1).every((r) => r.body.lastHeartbeat === true)).toBe(true);
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(1);
  });
});

describe('rule 9: fresh connections after two failed attempts in a row', () => {
  it('dials a new connection for the attempt after the second failure', async () => {
    const h = await start({ run: false });
    h.tes.reply({ status: 503 }, { status: 503 }, { status: 200, body: {} });
    h.clock.setRandom(0.5, 0, 0);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 3);
    const [a, b, c] = h.tes.requests.map((r) => r.connection);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });
});

describe('secrets', () => {
  it('never logs the token, the jwt or the nonce', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply(
      { status: 200, body: { jwt: 'jwt-secret-7g8h' } },
      { status: 401, body: { code: 'Unauthorized', message: 'bad token' } },
      { status: 500, body: 'Bearer jwt-secret-7g8h rejected' },
    );
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length >= 3);
    h.loop.end('signal');
    await h.clock.advance(60_000);
    await h.done;
    const everything = h.logs.join('\n') + (await h.metrics.render()).body;
    expect(h.logs.length).toBeGreaterThan(3);
    for (const secret of [TOKEN, 'jwt-secret-7g8h', NONCE, 'file-token'])
      expect(everything).not.toContain(secret);
  });
});

describe('rule 13: Retry-After is a floor under the backoff', () => {
  it('Retry-After: 0 and a date in the past wait the backoff draw, not zero', async () => {
    const h = await start({ run: false });
    h.tes.reply(
      { status: 503, headers: { 'retry-after': '0' } },
      { status: 503, headers: { 'retry-after': new Date(h.clock.now() - 60_000).toUTCString() } },
      { status: 200, body: {} },
    );
    h.clock.setRandom(0.5, 0.5, 0.5);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    expect(await h.idle()).toContain(500); // 0.5 × 1 s
    await h.clock.advance(499);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    expect(await h.idle()).toContain(1_000); // 0.5 × 2 s
    await h.clock.advance(1_000);
    await waitFor(() => h.tes.requests.length === 3);
    expect(policySleeps(h.clock).slice(0, 2)).toEqual([500, 1_000]);
  });

  it('a Retry-After above the draw wins', async () => {
    const h = await start({ run: false });
    h.tes.reply({ status: 429, headers: { 'retry-after': '2' } }, { status: 200, body: {} });
    h.clock.setRandom(0.5, 0.9);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    expect(await h.idle()).toContain(2_000);
  });
});

describe('rule 14: wall-clock steps change no timing', () => {
  it('a step back of 10 minutes keeps the cadence and the minimum gap', async () => {
    const h = await start({ intervalMs: 10_000, minGapMs: 1_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    h.clock.stepWall(-600_000);
    await h.clock.advance(200);
    h.snapshot.state = 'Running';
    h.loop.podUpdated();
    await h.idle();
    await h.clock.advance(800); // the gap, on the monotonic clock
    await waitFor(() => h.tes.requests.length === 2);
    await h.idle();
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length === 3);
  });

  it('a step forward of 10 minutes sends nothing early', async () => {
    const h = await start({ intervalMs: 10_000, minGapMs: 1_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    h.clock.stepWall(600_000);
    await h.clock.advance(200);
    h.snapshot.state = 'Running';
    h.loop.podUpdated();
    await h.idle();
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(799);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    await h.idle();
    await h.clock.advance(9_999);
    expect(h.tes.requests).toHaveLength(2);
  });

  it('a Retry-After date becomes a delay once; a step while waiting changes nothing', async () => {
    const h = await start({ intervalMs: 30_000, run: false });
    h.tes.reply({ status: 503, headers: { 'retry-after': new Date(h.clock.now() + 8_000).toUTCString() } });
    h.clock.setRandom(0.5, 0);
    h.done = h.loop.run();
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    h.clock.stepWall(-600_000);
    await h.clock.advance(7_999);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
  });
});

describe('rule 15: the end is bounded by FINAL_HEARTBEAT_DEADLINE', () => {
  it('aborts the attempt in flight when half the deadline is left, and the final one at the deadline', async () => {
    const h = await start({ finalDeadlineMs: 2_000 });
    h.tes.setFallback({ hang: true }); // a black hole: accepts, never answers
    await waitFor(() => h.tes.requests.length === 1);
    h.loop.end('signal');
    await h.clock.advance(999);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    expect(h.tes.requests[1]?.body.lastHeartbeat).toBe(true);
    await h.clock.advance(999);
    expect(await isSettled(h.done)).toBe(false);
    await h.clock.advance(1);
    await h.done;
    expect(await metric(h, 'tes_heartbeats_total{result="failure"}')).toBe(2);
  });

  it('a pod refresh that never ends gives way too: the first final attempt keeps half the deadline', async () => {
    const h = await start({ finalDeadlineMs: 4_000 });
    await waitFor(() => h.tes.requests.length === 1);
    await h.idle();
    h.loop.end('signal', new Promise(() => {}));
    await h.clock.advance(1_999);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    await h.done;
  });

  it('a short deadline keeps at least 300 ms for the first final attempt', async () => {
    const h = await start({ finalDeadlineMs: 400 });
    h.tes.reply({ hang: true });
    await waitFor(() => h.tes.requests.length === 1);
    h.loop.end('complete');
    await h.clock.advance(99);
    expect(h.tes.requests).toHaveLength(1);
    await h.clock.advance(1);
    await waitFor(() => h.tes.requests.length === 2);
    await h.done;
  });
});

describe('/healthz: the loop ticks', () => {
  it('stays alive through a 5-minute hold: long waits are slept in pieces', async () => {
    const h = await start({ intervalMs: 10_000 });
    h.tes.reply({ status: 429, headers: { 'retry-after': '3600' } });
    await waitFor(() => h.tes.requests.length === 1);
    for (let t = 0; t < 290_000; t += 10_000) {
      await h.clock.advance(10_000);
      expect(h.loop.alive()).toBe(true);
    }
    await h.clock.advance(10_000);
    await waitFor(() => h.tes.requests.length === 2); // the hold ended after 5 minutes
    expect(h.tes.requests[1]?.body.lastHeartbeat).toBeUndefined();
  });

  it('is not alive when an attempt never returns', async () => {
    const clock = new FakeClock();
    const log = await createLogger({ level: 'silent', format: 'json' });
    const loop = new HeartbeatLoop({
      clock,
      log,
      intervalMs: 10_000,
      minGapMs: 0,
      finalDeadlineMs: 1_000,
      body: () => ({}),
      signature: () => '',
      send: () => new Promise(() => {}), // ignores its signal: a wedged call
      bearer: { current: async () => undefined, unauthorized: async () => {}, rotated: async () => {} },
      resetConnections: async () => {},
      observer: { attempt: () => {}, heartbeat: () => {} },
    });
    void loop.run();
    await clock.advance(60_000);
    expect(loop.alive()).toBe(true);
    await clock.advance(1);
    expect(loop.alive()).toBe(false);
  });
});
