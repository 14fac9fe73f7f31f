// What a TES does to the agent's credentials (contract rules 11, 12, 20, 21), done to
// the built agent as a process: a fault-injecting TES on loopback, the fake
// Kubernetes API over HTTPS, and the whole of stdout and stderr searched.
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Secrets } from '../../src/secrets.ts';
import {
  type AgentProcess,
  type AgentWorld,
  freePort,
  getListener,
  stopAfterEach,
} from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';

const TOKEN = 'env-token-secret-1a2b';
const FILE_TOKEN = 'file-token-secret-3c4d';
const FILE_TOKEN_2 = 'file-token-secret-5e6f';
const NONCE = 'nonce-secret-7a8b';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.jwt-secret-9c0d.sig';
/** A jwt no HTTP header can carry: refused, and still a secret (rule 12 with rule 11). */
const BAD_JWT = 'refused-jwt\r\nsecret-1e2f';

interface World extends AgentWorld {
  dir: string;
  port: number;
}

const after = stopAfterEach();

async function world(): Promise<World> {
  const dir = await mkdtemp(path.join(tmpdir(), 'agent-secrets-'));
  const port = await freePort();
  const w = await after.world({
    runId: 'run-1',
    podStatus: { phase: 'Running' },
    env: {
      TES_TOKEN: TOKEN,
      TES_NONCE: NONCE,
      HEARTBEAT_INTERVAL: '500ms',
      HEARTBEAT_MIN_GAP: '0s',
      FINAL_HEARTBEAT_DEADLINE: '2s',
      JOB_RETRY_COUNT: '0',
      HARDWARE_DETAILS: 'off',
      HTTP_ADDR: `127.0.0.1:${port}`,
      LOG_LEVEL: 'debug',
    },
  });
  return { ...w, dir, port };
}

const run = (w: World, env: Record<string, string> = {}): AgentProcess => after.agent({ ...w.env, ...env });

async function stopped(agent: AgentProcess): Promise<number | null> {
  agent.child.kill('SIGTERM');
  return (await agent.exited).code;
}

/** A listener request; status 0 while the listener is not up yet. */
const get = (w: World, route: string) => getListener(w.port, route).catch(() => ({ status: 0, body: '' }));

/** Every form a secret can take in a JSON log line: raw, and JSON-escaped once and twice. */
function forms(secret: string): string[] {
  const once = JSON.stringify(secret).slice(1, -1);
  return [secret, once, JSON.stringify(once).slice(1, -1)];
}

function expectNoSecret(output: string, secrets: readonly string[]): void {
  for (const secret of secrets) for (const form of forms(secret)) expect(output).not.toContain(form);
}

const bearers = (w: World) => w.tes.requests.map((r) => r.authorization);
const errors = (agent: AgentProcess) => agent.logs.filter((line) => line.level === 50);

describe('Secrets: the one scrubber', () => {
  it('scrubs every value of 6 characters or more, raw and JSON-escaped; shorter ones are left to the field paths', () => {
    const secrets = new Secrets([TOKEN, 'short']);
    secrets.add('jwt', BAD_JWT);
    secrets.add('jwt', undefined);
    secrets.add('jwt', '');
    const line = JSON.stringify({ msg: `a ${TOKEN} b`, err: { message: `x ${BAD_JWT} y`, short: 'short' } });
    const scrubbed = secrets.scrub(line);
    expect(JSON.parse(scrubbed)).toEqual({
      msg: 'a [redacted] b',
      err: { message: 'x [redacted] y', short: 'short' },
    });
    expect(secrets.scrub(`raw ${BAD_JWT} and ${JSON.stringify(JSON.stringify(BAD_JWT))}`)).toBe(
      'raw [redacted] and "\\"[redacted]\\""',
    );
    // A value inside a longer one never leaves the longer one's ends behind.
    secrets.add('jwt', `xx-${TOKEN}-yy`);
    expect(secrets.scrub(`a xx-${TOKEN}-yy b`)).toBe('a [redacted] b');
  });

  it('keeps the fixed credentials for good and the most recent rotating ones of each kind, a bounded number', () => {
    const secrets = new Secrets([TOKEN], 3);
    secrets.add('token file', FILE_TOKEN);
    for (const n of [1, 2, 3, 4]) secrets.add('jwt', `rotating-jwt-${n}`);
    secrets.add('jwt', 'rotating-jwt-2'); // seen again: the newest once more
    secrets.add('jwt', 'rotating-jwt-5');
    expect(secrets.scrub(FILE_TOKEN)).toBe('[redacted]');
    const text = [TOKEN, 1, 2, 3, 4, 5]
      .map((n) => (typeof n === 'number' ? `rotating-jwt-${n}` : n))
      .join(' ');
    expect(secrets.scrub(text)).toBe(
      '[redacted] rotating-jwt-1 [redacted] rotating-jwt-3 [redacted] [redacted]',
    );
  });
});

describe('rule 11: no secret in any line, whatever the TES echoes', () => {
  it('an ErrorResponse naming the nonce and token, a text/plain 500 echoing the jwt, a refused jwt, a rotated token file', async () => {
    const w = await world();
    const tokenFile = path.join(w.dir, 'token');
    await writeFile(tokenFile, FILE_TOKEN);
    w.tes.reply(
      {
        status: 400,
        body: { code: 'BadRequest', message: `nonce ${NONCE} token ${FILE_TOKEN} rejected (and ${TOKEN})` },
      },
      { status: 200, body: { jwt: JWT } },
      {
        status: 500,
        headers: { 'content-type': 'text/plain' },
        raw: `Bearer ${JWT} is unknown here\nnonce=${NONCE}`,
      },
      { status: 200, body: { jwt: BAD_JWT } },
      { status: 401, body: { code: 'Unauthorized', message: `token ${JWT} expired; ${BAD_JWT} neither` } },
      { status: 403, body: { code: 'Forbidden', message: `token ${FILE_TOKEN_2} may not` } },
      // A field the client does not scrub itself: only the logger's scrubber catches this one.
      { status: 200, headers: { 'content-type': `text/x-${TOKEN}` }, raw: 'not JSON' },
    );
    // The 500's retry may be abandoned for the next heartbeat: the bearers are the same either way.
    const agent = run(w, { TES_TOKEN_FILE: tokenFile });
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'the first heartbeat');
    await writeFile(tokenFile, `${FILE_TOKEN_2}\n`);
    await waitFor(() => w.tes.requests.length >= 8, 15_000, 'the scripted answers');
    expect(await stopped(agent)).toBe(0);

    // The scenario played as scripted: the 401 dropped the jwt and the rotated file took over.
    expect(bearers(w).slice(0, 8)).toEqual([
      `Bearer ${FILE_TOKEN}`,
      `Bearer ${FILE_TOKEN_2}`,
      `Bearer ${JWT}`,
      `Bearer ${JWT}`,
      `Bearer ${JWT}`,
      `Bearer ${FILE_TOKEN_2}`,
      `Bearer ${FILE_TOKEN_2}`,
      `Bearer ${FILE_TOKEN_2}`,
    ]);
    const output = agent.stdout() + agent.stderr();
    expect(output).toContain('BadRequest');
    expect(output).toContain('text/x-[redacted]');
    expect(output).toContain('[redacted]');
    expectNoSecret(output, [TOKEN, FILE_TOKEN, FILE_TOKEN_2, NONCE, JWT, BAD_JWT]);
  });

  it('LOG_FORMAT=pretty scrubs the same', async () => {
    const w = await world();
    w.tes.reply(
      { status: 400, body: { code: 'BadRequest', message: `nonce ${NONCE} token ${TOKEN}` } },
      { status: 200, headers: { 'content-type': `text/x-${TOKEN}` }, raw: 'not JSON' },
    );
    const agent = run(w, { LOG_FORMAT: 'pretty' });
    await waitFor(() => w.tes.requests.length >= 3, 10_000, 'three heartbeats');
    expect(await stopped(agent)).toBe(0);
    const output = agent.stdout() + agent.stderr();
    expect(output).toContain('BadRequest');
    expect(output).toContain('text/x-[redacted]');
    expectNoSecret(output, [TOKEN, NONCE]);
  });
});

describe('rule 12: credentials a header can carry', () => {
  it('a TES_TOKEN ending in a newline is trimmed: the heartbeats arrive with the bare token', async () => {
    const w = await world();
    const agent = run(w, { TES_TOKEN: `${TOKEN}\n` });
    await waitFor(() => w.tes.requests.length >= 2, 10_000, 'two heartbeats');
    expect(bearers(w).slice(0, 2)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    expect(await stopped(agent)).toBe(0);
    expect(bearers(w).at(-1)).toBe(`Bearer ${TOKEN}`);
  });

  it('a token file ending in a newline is trimmed', async () => {
    const w = await world();
    const tokenFile = path.join(w.dir, 'token');
    await writeFile(tokenFile, `${FILE_TOKEN}\n`);
    const agent = run(w, { TES_TOKEN_FILE: tokenFile });
    await waitFor(() => w.tes.requests.length >= 2, 10_000, 'two heartbeats');
    expect(bearers(w).slice(0, 2)).toEqual([`Bearer ${FILE_TOKEN}`, `Bearer ${FILE_TOKEN}`]);
    expect(await stopped(agent)).toBe(0);
  });

  it('a token file a header cannot carry: an error log, TES_TOKEN meanwhile, the file read again before the next attempt', async () => {
    const w = await world();
    const tokenFile = path.join(w.dir, 'token');
    const broken = 'broken-token-line-one\r\nline-two-secret';
    await writeFile(tokenFile, `${broken}\n`);
    const agent = run(w, { TES_TOKEN_FILE: tokenFile });
    await waitFor(() => w.tes.requests.length >= 2, 10_000, 'two heartbeats');
    expect(bearers(w).slice(0, 2)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    expect(errors(agent), JSON.stringify(errors(agent))).toHaveLength(1);
    expect(String(errors(agent)[0]?.msg)).toContain('TES_TOKEN_FILE');
    const seen = w.tes.requests.length;
    await writeFile(tokenFile, FILE_TOKEN);
    await waitFor(() => w.tes.requests.length >= seen + 2, 10_000, 'heartbeats after the fix');
    expect(bearers(w).at(-1)).toBe(`Bearer ${FILE_TOKEN}`);
    expect(await stopped(agent)).toBe(0);
    expect(errors(agent)).toHaveLength(1);
    expectNoSecret(agent.stdout() + agent.stderr(), [broken, TOKEN, FILE_TOKEN]);
  });

  it('a jwt with a line break is not adopted: the previous bearer goes on, the final heartbeat too; TES_JWT_FILE keeps the good one', async () => {
    const w = await world();
    const jwtFile = path.join(w.dir, 'jwt');
    w.tes.reply({ status: 200, body: { jwt: JWT } }, { status: 200, body: { jwt: BAD_JWT } });
    const agent = run(w, { TES_JWT_FILE: jwtFile });
    await waitFor(() => w.tes.requests.length >= 4, 10_000, 'four heartbeats');
    expect(await stopped(agent)).toBe(0);
    const [first, ...rest] = bearers(w);
    expect(first).toBe(`Bearer ${TOKEN}`);
    for (const bearer of rest) expect(bearer).toBe(`Bearer ${JWT}`);
    expect(w.tes.requests.at(-1)?.body.lastHeartbeat).toBe(true);
    expect(await readFile(jwtFile, 'utf8')).toBe(JWT);
    expect(((await stat(jwtFile)).mode & 0o777).toString(8)).toBe('600');
    expect(errors(agent)).toHaveLength(1);
    expect(String(errors(agent)[0]?.msg)).toContain('jwt');
    expectNoSecret(agent.stdout() + agent.stderr(), [TOKEN, NONCE, JWT, BAD_JWT]);
  });
});

describe('rule 20: not a TES', () => {
  it('an HTML 200 is a failed heartbeat: not ready, not retried, one error naming TES_URL', async () => {
    const w = await world();
    w.tes.setFallback({
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      raw: '<!DOCTYPE html><html><head><title>Grafana</title></head><body>Welcome</body></html>',
    });
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 3, 10_000, 'three heartbeats');
    const ready = await get(w, '/readyz');
    expect(ready.status).toBe(503);
    const metrics = (await get(w, '/metrics')).body;
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
    // One attempt per heartbeat, each a failure: no retries (one heartbeat may be in flight).
    const failures = value('tes_heartbeats_total\\{result="failure"\\}');
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(value('tes_heartbeat_attempts_total') - failures).toBeLessThanOrEqual(1);
    expect(value('tes_heartbeats_total\\{result="success"\\}')).toBe(0);
    expect(await stopped(agent)).toBe(0);
    const lines = errors(agent);
    expect(lines).toHaveLength(1);
    const text = JSON.stringify(lines[0]);
    expect(text).toContain('TES_URL');
    expect(text).toContain(w.tes.url);
    expectNoSecret(agent.stdout() + agent.stderr(), [TOKEN, NONCE]);
  });

  it('JSON that is not an object, an empty body and JSON without a jwt are still success', async () => {
    const w = await world();
    w.tes.reply(
      { status: 200, headers: { 'content-type': 'application/json' }, raw: '[]' },
      { status: 200, raw: '' },
      { status: 204 },
    );
    const agent = run(w);
    await waitFor(async () => (await get(w, '/readyz')).status === 200, 10_000, 'ready');
    await waitFor(() => w.tes.requests.length >= 4, 10_000, 'four heartbeats');
    expect((await get(w, '/metrics')).body).toContain('tes_heartbeats_total{result="failure"} 0');
    expect(await stopped(agent)).toBe(0);
    expect(errors(agent)).toHaveLength(0);
  });
});

describe('rule 21: bounded answers', () => {
  it('an answer over 1 MiB is a failed attempt that discards its connection; the retry goes out on a fresh one', async () => {
    const w = await world();
    const huge = JSON.stringify({ jwt: JWT, padding: 'x'.repeat(2 * 1024 * 1024) });
    w.tes.reply({ status: 200, headers: { 'content-type': 'application/json' }, raw: huge });
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 2, 10_000, 'the retry');
    const [first, second] = w.tes.requests;
    expect(second?.connection).not.toBe(first?.connection);
    // The oversized answer's jwt was never adopted.
    expect(second?.authorization).toBe(`Bearer ${TOKEN}`);
    await waitFor(
      () => agent.logs.some((line) => JSON.stringify(line).includes('TES_RESPONSE_TOO_LARGE')),
      5_000,
      'the failed attempt logged with its code',
    );
    await waitFor(async () => (await get(w, '/readyz')).status === 200, 10_000, 'ready after the retry');
    expect(await stopped(agent)).toBe(0);
  });
});
