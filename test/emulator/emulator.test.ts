// The emulator over real HTTP: lifecycle (time driven by a FakeClock), nonce
// fencing, run-scoped tokens, the contract's order of checks, bad input of every
// kind, listing filters and page tokens, and the heartbeat log. Every response
// is checked against the definition after each test.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, MAX_BODY_BYTES } from '../../src/emulator/server.ts';
import { expectValidResponses, startCheckedEmulator } from '../support/emulator-harness.ts';
import { hangUp, type RawRequest, send, sendRaw } from '../support/emulator-http.ts';
import { FakeClock } from '../support/fake-clock.ts';

const ADMIN = 'admin-token';
const started: Emulator[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.close()));
  expectValidResponses();
});

async function emulator(options: EmulatorOptions = {}) {
  const clock = new FakeClock(Date.parse('2026-03-01T12:00:00Z'));
  const emu = await startCheckedEmulator({ clock, ...options });
  started.push(emu);
  const call = (path: string, request: RawRequest = {}) => send(emu.url, path, request);
  const create = async (body: object = {}, token?: string) => {
    const res = await call('/v1/tasks/runs', {
      method: 'POST',
      body: JSON.stringify(body),
      ...(token && { token }),
    });
    expect(res.status).toBe(201);
    return res.json.id as string;
  };
  const beat = (id: string, body: object, token?: string) =>
    call(`/v1/tasks/runs/${encodeURIComponent(id)}:heartbeat`, {
      method: 'POST',
      body: JSON.stringify(body),
      ...(token && { token }),
    });
  const get = async (id: string, token?: string) =>
    (await call(`/v1/tasks/runs/${encodeURIComponent(id)}`, token ? { token } : {})).json;
  return { emu, clock, call, create, beat, get };
}

const terminated = (name: string, exitCode: number, reason?: string) => ({
  name,
  state: { terminated: { exitCode, ...(reason && { reason }), finishedAt: '2026-03-01T12:00:00Z' } },
});

describe('run lifecycle', () => {
  it('Pending → Running on the first heartbeat → Completed when every container exited 0', async () => {
    const { create, beat, get, clock } = await emulator();
    const id = await create({ name: 'ok' });
    expect((await get(id)).status).toBe('Pending');
    await clock.advance(1_000);
    expect(
      (await beat(id, { podName: 'p', containerStatus: [{ name: 'main', state: { running: {} } }] })).status,
    ).toBe(200);
    const running = await get(id);
    expect(running).toMatchObject({ status: 'Running', timeModified: '2026-03-01T12:00:01.000Z' });
    expect(running.timeCreated).toBe('2026-03-01T12:00:00.000Z');
    const final = await beat(id, {
      lastHeartbeat: true,
      containerStatus: [terminated('main', 0), terminated('b', 0)],
    });
    expect(final.status).toBe(200);
    const done = await get(id);
    expect(done.status).toBe('Completed');
    expect(done.statusDetails).toBeUndefined();
  });

  it('Failed on a final heartbeat with a failing container, naming each other container', async () => {
    const { create, beat, get } = await emulator();
    const id = await create();
    await beat(id, {
      lastHeartbeat: true,
      containerStatus: [
        terminated('good', 0),
        terminated('bad', 137, 'OOMKilled'),
        { name: 'slow', state: { running: { startedAt: '2026-03-01T11:00:00+00:00' } } },
        { name: 'stuck', state: { waiting: { reason: 'ImagePullBackOff' } } },
        { name: 'silent' },
      ],
    });
    const run = await get(id);
    expect(run.status).toBe('Failed');
    expect(run.statusDetails).toBe(
      'bad: exit code 137 (OOMKilled); slow: still running; stuck: waiting (ImagePullBackOff); silent: no state reported',
    );
  });

  it('Failed when the final heartbeat reports no container; statusDetails stays within 4096 characters', async () => {
    const { create, beat, get } = await emulator();
    const empty = await create();
    await beat(empty, { lastHeartbeat: true });
    expect(await get(empty)).toMatchObject({
      status: 'Failed',
      statusDetails: expect.stringContaining('no container'),
    });

    const many = await create();
    const containerStatus = Array.from({ length: 300 }, (_, i) =>
      terminated(`container-${i}`, 1, 'E'.repeat(40)),
    );
    await beat(many, { lastHeartbeat: true, containerStatus });
    const run = await get(many);
    expect(run.status).toBe('Failed');
    expect(run.statusDetails.length).toBe(4096);
    expect(run.statusDetails.startsWith('container-0: exit code 1 (EEEE')).toBe(true);
  });

  it('TimedOut exactly when --heartbeat-timeout passes without a heartbeat while Running', async () => {
    const { create, beat, get, call, clock } = await emulator({ heartbeatTimeoutMs: 90_000 });
    const id = await create();
    const pending = await create();
    await beat(id, {});
    await clock.advance(60_000);
    await beat(id, {}); // a heartbeat keeps it alive
    await clock.advance(89_999);
    expect((await get(id)).status).toBe('Running');
    await clock.advance(1);
    const run = await get(id);
    expect(run).toMatchObject({ status: 'TimedOut', statusDetails: 'no heartbeat for 1m30s' });
    expect(run.timeModified).toBe('2026-03-01T12:02:30.000Z');
    const listed = await call('/v1/tasks/runs?status=TimedOut');
    expect(listed.json.items.map((r: { id: string }) => r.id)).toEqual([id]);
    const late = await beat(id, {});
    expect(late.status).toBe(400);
    expect(late.json.code).toBe('InvalidRunState');
    // A run that never heard a heartbeat is not Running, so it never times out.
    await clock.advance(3_600_000);
    expect((await get(pending)).status).toBe('Pending');
  });

  it('abort: Pending or Running → Aborted (TaskRunSummary), anything else 400, then heartbeats 400', async () => {
    const { create, beat, call } = await emulator();
    const abort = (id: string) => call(`/v1/tasks/runs/${id}:abort`, { method: 'PUT' });
    const pending = await create({ name: 'p' });
    const first = await abort(pending);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ id: pending, name: 'p', status: 'Aborted' });
    const running = await create();
    await beat(running, {});
    expect((await abort(running)).json.status).toBe('Aborted');
    const again = await abort(running);
    expect(again.status).toBe(400);
    expect(again.json.message).toContain('Aborted');
    const completed = await create();
    await beat(completed, { lastHeartbeat: true, containerStatus: [terminated('m', 0)] });
    expect((await abort(completed)).status).toBe(400);
    expect((await beat(pending, {})).status).toBe(400);
  });
});

describe('nonce fencing', () => {
  it('the first heartbeat fixes the nonce; a different, added or dropped one is 409', async () => {
    const { create, beat, emu } = await emulator();
    const id = await create();
    expect((await beat(id, { nonce: 'abc', podName: 'first' })).status).toBe(200);
    expect((await beat(id, { nonce: 'abc' })).status).toBe(200);
    const other = await beat(id, { nonce: 'xyz', podName: 'impostor' });
    expect(other.status).toBe(409);
    expect(other.json.code).toBe('NonceMismatch');
    expect(other.text).not.toContain('abc');
    expect(other.text).not.toContain('xyz');
    expect((await beat(id, {})).status).toBe(409);
    expect((await beat(id, { nonce: '' })).status).toBe(409);
    expect(emu.heartbeats(id)).toEqual([{ nonce: 'abc', podName: 'first' }, { nonce: 'abc' }]);
  });

  it('a first heartbeat without a nonce fixes its absence', async () => {
    const { create, beat } = await emulator();
    const id = await create();
    expect((await beat(id, {})).status).toBe(200);
    expect((await beat(id, { nonce: 'late' })).status).toBe(409);
    expect((await beat(id, { podName: 'p' })).status).toBe(200);
  });
});

describe('bearer auth and run tokens', () => {
  it('with --token: a call without it is 401; each heartbeat issues a fresh token for that run only', async () => {
    const { create, beat, call, get } = await emulator({ token: ADMIN });
    const noBearer = await call('/v1/tasks/runs');
    expect(noBearer.status).toBe(401);
    expect(noBearer.headers['www-authenticate']).toBe('Bearer');
    expect((await call('/v1/tasks/runs', { token: 'nope' })).status).toBe(401);
    expect((await call('/v1/tasks/runs', { token: ADMIN })).status).toBe(200);

    const id = await create({}, ADMIN);
    const other = await create({}, ADMIN);
    const jwt1 = (await beat(id, {}, ADMIN)).json.jwt as string;
    const jwt2 = (await beat(id, {}, jwt1)).json.jwt as string;
    expect(jwt1.split('.')).toHaveLength(3);
    expect(jwt2).not.toBe(jwt1);
    const claims = JSON.parse(Buffer.from(jwt1.split('.')[1] as string, 'base64url').toString());
    expect(claims.sub).toBe(id);

    // Every token issued for the run stays valid for its calls…
    for (const token of [jwt1, jwt2]) {
      expect((await get(id, token)).id).toBe(id);
      expect((await call(`/emulator/runs/${id}/heartbeats`, { token })).status).toBe(200);
    }
    expect((await beat(id, {}, jwt1)).status).toBe(200);
    // …and for nothing else.
    expect((await call(`/v1/tasks/runs/${other}`, { token: jwt1 })).status).toBe(401);
    expect((await beat(other, {}, jwt1)).status).toBe(401);
    expect((await call(`/v1/tasks/runs/${other}:abort`, { method: 'PUT', token: jwt1 })).status).toBe(401);
    expect((await call('/v1/tasks/runs', { token: jwt1 })).status).toBe(401);
    expect((await call('/v1/tasks/runs', { method: 'POST', token: jwt1 })).status).toBe(401);
    // A token whose payload was changed to another run fails its signature.
    const [h, , s] = jwt1.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: other })).toString('base64url')}.${s}`;
    expect((await call(`/v1/tasks/runs/${other}`, { token: forged })).status).toBe(401);
    expect((await call(`/v1/tasks/runs/${id}:abort`, { method: 'PUT', token: jwt2 })).json.status).toBe(
      'Aborted',
    );
  });

  it('without --token every call is allowed and heartbeats still carry a jwt', async () => {
    const { create, beat, call } = await emulator();
    const id = await create();
    expect((await call('/v1/tasks/runs', { token: 'anything' })).status).toBe(200);
    expect((await beat(id, {})).json.jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});

describe('bad input: each kind answered with a JSON ErrorResponse', () => {
  it('malformed JSON → 400 MalformedJson', async () => {
    const { create, call } = await emulator();
    const id = await create();
    const res = await call(`/v1/tasks/runs/${id}:heartbeat`, { method: 'POST', body: '{"podName": ' });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('MalformedJson');
  });

  it('a non-JSON content type → 415; the JSON family and parameters are accepted', async () => {
    const { create, call, emu } = await emulator();
    const id = await create();
    const post = (type: string) =>
      call(`/v1/tasks/runs/${id}:heartbeat`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': type },
      });
    const refused = await post('text/plain');
    expect(refused.status).toBe(415);
    expect(refused.json.code).toBe('UnsupportedMediaType');
    for (const type of [
      'application/json; charset=utf-8',
      'application/json-patch+json',
      'text/json',
      'application/x+json',
    ])
      expect((await post(type)).status).toBe(200);
    const noType = await sendRaw(
      emu.url,
      `POST /v1/tasks/runs/${id}:heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    );
    expect(noType).toMatch(/^HTTP\/1.1 415/);
  });

  it('an oversized body → 413 after reading it, and the connection still answers', async () => {
    const { create, call } = await emulator();
    const id = await create();
    const body = JSON.stringify({ podHardwareDetails: 'x'.repeat(MAX_BODY_BYTES) });
    const res = await call(`/v1/tasks/runs/${id}:heartbeat`, { method: 'POST', body });
    expect(res.status).toBe(413);
    expect(res.json.code).toBe('PayloadTooLarge');
    const justUnder = JSON.stringify({ podHardwareDetails: 'x'.repeat(MAX_BODY_BYTES - 30) });
    expect((await call(`/v1/tasks/runs/${id}:heartbeat`, { method: 'POST', body: justUnder })).status).toBe(
      200,
    );
  });

  it('an unknown path → 404, also under /v1/tasks/runs/ and /ui/, and for an id that is not valid percent-encoding', async () => {
    const { call } = await emulator();
    for (const path of [
      '/index.html',
      '/ui',
      '/ui/',
      '/ui/runs',
      '/ui/runs/a/b',
      '/ui/parts/runs/',
      '/ui/runs/%E0%A4%A',
      '/v1/tasks',
      '/v1/tasks/runs/',
      '/v1/tasks/runs/a/b',
      '/v1/tasks/runs/%E0%A4%A',
      '/v1/tasks/runs/:abort',
    ]) {
      const res = await call(path);
      expect(res.status, path).toBe(404);
      expect(res.json.code, path).toBe('NotFound');
    }
  });

  it('a wrong method → 405 with Allow', async () => {
    const { call } = await emulator();
    const res = await call('/v1/tasks/runs', { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
    expect((await call('/v1/tasks/runs/x:abort', { method: 'POST' })).headers.allow).toBe('PUT');
    expect((await call('/v1/tasks/runs/x:heartbeat', { method: 'GET' })).status).toBe(405);
  });

  it('a body that breaks the definition → 400 naming every offending field by its JSON path', async () => {
    const { create, call } = await emulator();
    const id = await create();
    const res = await call(`/v1/tasks/runs/${id}:heartbeat`, {
      method: 'POST',
      body: JSON.stringify({
        podName: null,
        jobRetryCount: 2 ** 31,
        extra: 1,
        containerStatus: [
          { name: 'a', state: { running: { startedAt: '2026-03-01T12:00:00' } } },
          {
            name: 'b',
            state: { terminated: { exitCode: '1', finishedAt: '2026-03-01T12:00:00.000000+00:00' } },
          },
        ],
      }),
    });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('InvalidBody');
    expect(res.json.details).toEqual([
      { field: 'podName', message: 'expected a string, got null' },
      { field: 'jobRetryCount', message: 'out of the int32 range' },
      { field: 'extra', message: 'unknown field' },
      { field: 'containerStatus[0].state.running.startedAt', message: 'not a date-time with Z or an offset' },
      { field: 'containerStatus[1].state.terminated.exitCode', message: 'expected an integer, got a string' },
    ]);
    const long = await call('/v1/tasks/runs', {
      method: 'POST',
      body: JSON.stringify({ description: 'd'.repeat(4097) }),
    });
    expect(long.json.details).toEqual([{ field: 'description', message: 'longer than 4096 characters' }]);
  });

  it('a JSON null or array as the whole body → 400', async () => {
    const { create, call } = await emulator();
    const id = await create();
    for (const body of ['null', '[]', '"text"']) {
      const res = await call(`/v1/tasks/runs/${id}:heartbeat`, { method: 'POST', body });
      expect(res.status, body).toBe(400);
      expect(res.json.details[0].field).toBe('(root)');
    }
  });

  it('an empty body with a JSON content type is no body (as generated clients send it)', async () => {
    const { call, emu } = await emulator();
    const headers = { 'content-type': 'application/json', 'content-length': '0' };
    const created = await call('/v1/tasks/runs', { method: 'POST', headers });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect((await call(`/v1/tasks/runs/${id}:heartbeat`, { method: 'POST', headers })).status).toBe(200);
    expect((await call(`/v1/tasks/runs/${id}`, { headers })).status).toBe(200);
    expect(
      (await call('/v1/tasks/runs', { headers: { 'content-type': 'text/plain', 'content-length': '0' } }))
        .status,
    ).toBe(200);
    expect(emu.heartbeats(id)).toEqual([{}]);
  });

  it('a malformed HTTP request gets a 400 ErrorResponse, and the emulator keeps serving', async () => {
    const { call, emu } = await emulator();
    const answer = await sendRaw(emu.url, 'NOT A REQUEST\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).code).toBe('BadRequest');
    expect((await call('/v1/tasks/runs')).status).toBe(200);
  });

  it('a client that hangs up in the middle of a body does not crash it', async () => {
    const { call, create, emu } = await emulator();
    const id = await create();
    await hangUp(
      emu.url,
      `POST /v1/tasks/runs/${id}:heartbeat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pod`,
    );
    expect((await call(`/v1/tasks/runs/${id}`)).json.status).toBe('Pending');
  });
});

describe('the order of checks', () => {
  it('404/405 → 401 → 413 → 415 → 400 → 404 run → 400 terminal → 409', async () => {
    const { create, beat, call } = await emulator({ token: ADMIN });
    const big = 'x'.repeat(MAX_BODY_BYTES + 1);
    // Unknown path and wrong method come before auth.
    expect((await call('/nope')).status).toBe(404);
    expect((await call('/v1/tasks/runs', { method: 'PATCH' })).status).toBe(405);
    // Auth comes before the body's size…
    expect((await call('/v1/tasks/runs', { method: 'POST', body: big })).status).toBe(401);
    // …size before content type…
    const headers = { 'content-type': 'text/plain' };
    expect((await call('/v1/tasks/runs', { method: 'POST', body: big, headers, token: ADMIN })).status).toBe(
      413,
    );
    // …content type before JSON syntax…
    expect((await call('/v1/tasks/runs', { method: 'POST', body: '{', headers, token: ADMIN })).status).toBe(
      415,
    );
    // …the body before the run's existence…
    const bad = await call('/v1/tasks/runs/missing:heartbeat', {
      method: 'POST',
      body: '{"x":1}',
      token: ADMIN,
    });
    expect(bad.status).toBe(400);
    expect((await beat('missing', {}, ADMIN)).status).toBe(404);
    // …and a terminal run before the nonce.
    const id = await create({}, ADMIN);
    await beat(id, { nonce: 'a', lastHeartbeat: true }, ADMIN);
    const late = await beat(id, { nonce: 'b' }, ADMIN);
    expect(late.status).toBe(400);
    expect(late.json.code).toBe('InvalidRunState');
  });
});

describe('listing', () => {
  async function seeded() {
    const env = await emulator();
    const { store } = env.emu;
    const ids = {
      a1: store.create({ name: 'alpha', acl: ['team-a'] }, { version: '1.0' }).id as string,
      b1: store.create({ name: 'beta', acl: ['team-b', 'shared'] }, { version: '2.0' }).id as string,
      a2: store.create({ name: 'alpha', acl: ['team-b'] }, { version: '2.0' }).id as string,
      c1: store.create({ name: 'gamma' }).id as string,
    };
    await env.clock.advance(1_000);
    await env.beat(ids.b1, {});
    return { ...env, ids };
  }
  const idsOf = (res: { json: { items: { id: string }[] } }) => res.json.items.map((r) => r.id);

  it('filters by names, status, versions and acls; lists are OR, parameters AND', async () => {
    const { call, ids } = await seeded();
    expect(idsOf(await call('/v1/tasks/runs?names=alpha'))).toEqual([ids.a1, ids.a2]);
    expect(idsOf(await call('/v1/tasks/runs?names=alpha,gamma'))).toEqual([ids.a1, ids.a2, ids.c1]);
    expect(idsOf(await call('/v1/tasks/runs?status=Running'))).toEqual([ids.b1]);
    expect(idsOf(await call('/v1/tasks/runs?status=Pending,Running&versions=2.0'))).toEqual([ids.b1, ids.a2]);
    expect(idsOf(await call('/v1/tasks/runs?acls=shared,team-a'))).toEqual([ids.a1, ids.b1]);
    expect(idsOf(await call('/v1/tasks/runs?names=alpha&acls=team-b'))).toEqual([ids.a2]);
    expect(idsOf(await call('/v1/tasks/runs?names=nobody'))).toEqual([]);
    expect(idsOf(await call('/v1/tasks/runs?names=&status='))).toHaveLength(4);
    const versioned = await call('/v1/tasks/runs?versions=1.0');
    expect(versioned.json.items[0].taskVersionSummary).toEqual({ version: '1.0' });
  });

  it('sorts by FIELD or FIELD asc|desc (the space arriving as +), ties in creation order; unknown → 400', async () => {
    const { call, ids } = await seeded();
    expect(idsOf(await call('/v1/tasks/runs?sort=name'))).toEqual([ids.a1, ids.a2, ids.b1, ids.c1]);
    expect(idsOf(await call('/v1/tasks/runs?sort=name+desc'))).toEqual([ids.c1, ids.b1, ids.a1, ids.a2]);
    expect(idsOf(await call('/v1/tasks/runs?sort=name%20asc'))).toEqual([ids.a1, ids.a2, ids.b1, ids.c1]);
    expect(idsOf(await call('/v1/tasks/runs?sort=status+desc'))).toEqual([ids.b1, ids.a1, ids.a2, ids.c1]);
    expect(idsOf(await call('/v1/tasks/runs?sort=timeModified+desc'))).toEqual([
      ids.b1,
      ids.a1,
      ids.a2,
      ids.c1,
    ]);
    expect(idsOf(await call('/v1/tasks/runs?sort=timeModified'))).toEqual([ids.a1, ids.a2, ids.c1, ids.b1]);
    for (const sort of ['size', 'name+sideways', 'name+asc+twice']) {
      const res = await call(`/v1/tasks/runs?sort=${sort}`);
      expect(res.status, sort).toBe(400);
      expect(res.json.details[0].field).toBe('sort');
    }
  });

  it('pageSize 1–1000 (default 10), tokens for existing pages only, unknown token 400', async () => {
    const { call, emu } = await emulator();
    for (let i = 0; i < 25; i++) emu.store.create({ name: `r${i}` });
    const first = await call('/v1/tasks/runs');
    expect(first.json).toMatchObject({ itemCount: 10, totalItemCount: 25, totalPageCount: 3 });
    expect(first.json.prevPageToken).toBeUndefined();
    expect(first.json.nextPageToken).toBeDefined();
    const last = await call(`/v1/tasks/runs?pageToken=${first.json.lastPageToken}`);
    expect(last.json.items.map((r: { name: string }) => r.name)).toEqual(['r20', 'r21', 'r22', 'r23', 'r24']);
    expect(last.json.nextPageToken).toBeUndefined();
    const middle = await call(`/v1/tasks/runs?pageToken=${last.json.prevPageToken}`);
    expect(middle.json.items[0].name).toBe('r10');
    expect((await call(`/v1/tasks/runs?pageToken=${middle.json.firstPageToken}`)).json.items[0].name).toBe(
      'r0',
    );
    expect((await call('/v1/tasks/runs?pageSize=1000')).json.itemCount).toBe(25);
    expect((await call('/v1/tasks/runs?pageSize=1')).json.totalPageCount).toBe(25);
    for (const query of [
      'pageSize=0',
      'pageSize=1001',
      'pageSize=-1',
      'pageSize=ten',
      'pageSize=2.5',
      'pageToken=bogus',
    ]) {
      const res = await call(`/v1/tasks/runs?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.json.code).toBe('InvalidQuery');
    }
    const none = await call('/v1/tasks/runs?names=nobody');
    expect(none.json).toMatchObject({ items: [], itemCount: 0, totalItemCount: 0, totalPageCount: 0 });
    expect(none.json.nextPageToken).toBeUndefined();
  });
});

describe('the heartbeat log', () => {
  it('returns the accepted bodies exactly as received, oldest first; 404 for an unknown run', async () => {
    const { create, beat, call } = await emulator();
    const id = await create();
    const bodies = [
      {
        podName: 'p',
        nonce: 'n',
        containerStatus: [
          { name: 'm', state: { running: { startedAt: '2026-03-01T12:00:00.000000+00:00' } } },
        ],
      },
      { nonce: 'n', jobRetryCount: 0, lastHeartbeat: false, podHardwareDetails: '{"node":"n1"}' },
    ];
    for (const body of bodies) await beat(id, body);
    await beat(id, { nonce: 'other' }); // refused: not in the log
    const log = await call(`/emulator/runs/${encodeURIComponent(id)}/heartbeats`);
    expect(log.status).toBe(200);
    expect(log.json).toEqual(bodies);
    expect((await call('/emulator/runs/nope/heartbeats')).status).toBe(404);
    expect((await call(`/emulator/runs/${id}/heartbeats`, { method: 'POST' })).status).toBe(405);
  });
});

describe('logging', () => {
  it('logs each request at debug with method, path and status, never the authorization header', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const log = pino({ level: 'debug' }, sink);
    const { call } = await emulator({ log, token: ADMIN });
    await call('/v1/tasks/runs?pageSize=1', { token: ADMIN });
    await call('/nope', { token: ADMIN });
    const requests = lines.filter((l) => l.msg === 'request');
    expect(requests).toMatchObject([
      { level: 20, method: 'GET', path: '/v1/tasks/runs', status: 200 },
      { level: 20, method: 'GET', path: '/nope', status: 404 },
    ]);
    expect(JSON.stringify(lines)).not.toContain(ADMIN);
  });
});
