// The TES client over real HTTP: against the emulator for every operation's
// success and documented errors, and against small local servers for what the
// emulator never does (403, 5xx, Retry-After, black holes, TLS, odd bodies).
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator, EmulatorExchange } from '../../src/emulator/server.ts';
import { Secrets } from '../../src/secrets.ts';
import { MAX_ANSWER_BYTES, TesClient } from '../../src/tes/client.ts';
import { TesError } from '../../src/tes/errors.ts';
import { startCheckedEmulator, expectValidResponses } from '../support/emulator-harness.ts';
import { FakeClock, settle, waitFor } from '../support/fake-clock.ts';

const TOKEN = 'admin-secret-token';
const tls = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

/** The rejection of `promise`, which must be a TesError. */
async function tesError(promise: Promise<unknown>): Promise<TesError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TesError);
  return error as TesError;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

function closeServer(server: Server): Promise<void> {
  (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A local HTTP server answering from `handler`, counting connections and keeping request headers. */
async function stubServer(handler: RequestListener) {
  const requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let connections = 0;
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res);
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    close: () => closeServer(server),
  };
}

describe('TesClient against the emulator', () => {
  let emulator: Emulator;
  let client: TesClient;
  const exchanges: EmulatorExchange[] = [];
  const admin = { token: TOKEN };

  beforeAll(async () => {
    emulator = await startCheckedEmulator({ token: TOKEN, onResponse: (e) => exchanges.push(e) });
    client = new TesClient({ baseUrl: emulator.url, timeoutMs: 5_000 });
  });
  afterAll(async () => {
    await client.close();
    await emulator.close();
  });
  afterEach(() => {
    expectValidResponses();
  });

  it('createTaskRun: 201 TaskRun from a body, and from no body at all', async () => {
    const run = await client.createTaskRun({ name: 'first', description: 'd', acl: ['team-a'] }, admin);
    expect(run).toMatchObject({ name: 'first', description: 'd', acl: ['team-a'], status: 'Pending' });
    expect(run.id).toMatch(/^trn\./);
    const bare = await client.createTaskRun(undefined, admin);
    expect(bare.status).toBe('Pending');
    expect(bare.name).toBeUndefined();
  });

  it('createTaskRun: 400 with the ErrorResponse code and message, not retryable', async () => {
    const error = await tesError(client.createTaskRun({ name: 'n'.repeat(256) }, admin));
    expect(error).toMatchObject({
      code: 'TES_HTTP_ERROR',
      operation: 'createTaskRun',
      status: 400,
      errorCode: 'InvalidBody',
      retryable: false,
    });
    expect(error.errorMessage).toContain('name: longer than 255 characters');
    expect(error.url).toBe(`${emulator.url}/v1/tasks/runs`);
  });

  it('every operation: 401 without the token, and the error never holds the token', async () => {
    const { id } = emulator.store.create({});
    const wrong = { token: `${TOKEN}-wrong` };
    const calls: [string, () => Promise<unknown>][] = [
      ['createTaskRun', () => client.createTaskRun({}, wrong)],
      ['getTaskRun', () => client.getTaskRun(id as string)],
      ['listTaskRuns', () => client.listTaskRuns({}, wrong)],
      ['abortTaskRun', () => client.abortTaskRun(id as string, wrong)],
      ['heartbeatTaskRun', () => client.heartbeatTaskRun(id as string, {}, wrong)],
    ];
    for (const [operation, call] of calls) {
      const error = await tesError(call());
      expect(error).toMatchObject({ operation, status: 401, errorCode: 'Unauthorized', retryable: false });
      const everything = `${error.message} ${error.stack} ${JSON.stringify(error)}`;
      expect(everything).not.toContain(TOKEN);
    }
  });

  it('getTaskRun: 200 TaskRun, 404 for an unknown run', async () => {
    const created = await client.createTaskRun({ name: 'to-get' }, admin);
    const run = await client.getTaskRun(created.id as string, admin);
    expect(run).toEqual(created);
    const error = await tesError(client.getTaskRun('trn.nope', admin));
    expect(error).toMatchObject({ status: 404, errorCode: 'RunNotFound', retryable: false });
  });

  it('percent-encodes run ids in every path: `:`, `/`, space, `%` and non-ASCII', async () => {
    const id = 'odd:id/with space%25ü';
    emulator.store.create({ name: 'odd' }, { id });
    exchanges.length = 0;
    expect((await client.getTaskRun(id, admin)).id).toBe(id);
    expect((await client.heartbeatTaskRun(id, { podName: 'p' }, admin)).jwt).toBeTruthy();
    expect((await client.abortTaskRun(id, admin)).status).toBe('Aborted');
    const encoded = 'odd%3Aid%2Fwith%20space%2525%C3%BC';
    expect(exchanges.map((e) => e.path)).toEqual([
      `/v1/tasks/runs/${encoded}`,
      `/v1/tasks/runs/${encoded}:heartbeat`,
      `/v1/tasks/runs/${encoded}:abort`,
    ]);
  });

  it('listTaskRuns: sends sort, filters, pageSize and pageToken as the query; 400 for a bad pageSize', async () => {
    emulator.store.create({ name: 'list-b', acl: ['list'] });
    emulator.store.create({ name: 'list-a', acl: ['list'] });
    const page = await client.listTaskRuns({ acls: 'list', sort: 'name desc', pageSize: 1 }, admin);
    expect(page.items?.map((r) => r.name)).toEqual(['list-b']);
    expect(page).toMatchObject({ itemCount: 1, totalItemCount: 2, totalPageCount: 2 });
    const next = await client.listTaskRuns(
      { acls: 'list', sort: 'name desc', pageSize: 1, pageToken: page.nextPageToken as string },
      admin,
    );
    expect(next.items?.map((r) => r.name)).toEqual(['list-a']);
    expect(next.nextPageToken).toBeUndefined();
    const error = await tesError(client.listTaskRuns({ pageSize: 0 }, admin));
    expect(error).toMatchObject({ status: 400, errorCode: 'InvalidQuery' });
    expect(error.url).toContain('pageSize=0');
  });

  it('abortTaskRun: 200 TaskRunSummary, 400 once terminal, 404 for an unknown run', async () => {
    const { id } = await client.createTaskRun({ name: 'to-abort' }, admin);
    const summary = await client.abortTaskRun(id as string, admin);
    expect(summary).toMatchObject({ id, status: 'Aborted' });
    expect(summary).not.toHaveProperty('execution');
    expect(await tesError(client.abortTaskRun(id as string, admin))).toMatchObject({
      status: 400,
      errorCode: 'InvalidRunState',
    });
    expect(await tesError(client.abortTaskRun('trn.nope', admin))).toMatchObject({ status: 404 });
  });

  it('heartbeatTaskRun: 200 with a run-scoped jwt that then works as the bearer; 400, 404, 409', async () => {
    const { id } = await client.createTaskRun({}, admin);
    const { jwt } = await client.heartbeatTaskRun(id as string, { podName: 'p', nonce: 'n1' }, admin);
    expect(jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const run = await client.getTaskRun(id as string, { token: jwt as string });
    expect(run.status).toBe('Running');

    const bad = await tesError(
      client.heartbeatTaskRun(id as string, { jobRetryCount: 'x' as unknown as number }, admin),
    );
    expect(bad).toMatchObject({ status: 400, errorCode: 'InvalidBody' });
    expect(await tesError(client.heartbeatTaskRun('trn.nope', {}, admin))).toMatchObject({ status: 404 });
    const fenced = await tesError(client.heartbeatTaskRun(id as string, { nonce: 'n2' }, admin));
    expect(fenced).toMatchObject({ status: 409, errorCode: 'NonceMismatch', retryable: false });
    expect(fenced.message).not.toContain('n1');
    expect(fenced.message).not.toContain('n2');
  });
});

describe('TesClient on the wire', () => {
  it('sends JSON headers, the bearer only when given, and honours a base path', async () => {
    const stub = await stubServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"Running"}');
    });
    const client = new TesClient({ baseUrl: `${stub.url}/tes/`, timeoutMs: 5_000 });
    try {
      await client.getTaskRun('r1');
      await client.heartbeatTaskRun('r1', { podName: 'p', lastHeartbeat: false }, { token: 'tok' });
      const [get, beat] = stub.requests;
      expect(get).toMatchObject({ method: 'GET', url: '/tes/v1/tasks/runs/r1', body: '' });
      expect(get?.headers).toMatchObject({ accept: 'application/json', 'content-type': 'application/json' });
      expect(get?.headers.authorization).toBeUndefined();
      expect(beat).toMatchObject({ method: 'POST', url: '/tes/v1/tasks/runs/r1:heartbeat' });
      expect(beat?.headers.authorization).toBe('Bearer tok');
      expect(JSON.parse(beat?.body ?? '')).toEqual({ podName: 'p', lastHeartbeat: false });
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('reuses one connection across calls; resetConnections dials a fresh one', async () => {
    const stub = await stubServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000 });
    try {
      // undici frees a socket a tick after the body's end: a call made in that same
      // tick dials a second one. Real callers (the agent's loop) are never that quick.
      const call = async () => {
        await client.heartbeatTaskRun('r', {});
        await settle(1);
      };
      for (let i = 0; i < 3; i++) await call();
      expect(stub.connections()).toBe(1);
      await client.resetConnections();
      await call();
      await call();
      expect(stub.connections()).toBe(2);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it.each([
    {
      status: 403,
      body: '{"code":"Forbidden","message":"not yours"}',
      retryable: false,
      errorCode: 'Forbidden',
    },
    { status: 500, body: '{"code":"Internal","message":"boom"}', retryable: true, errorCode: 'Internal' },
    { status: 429, body: '{"code":"TooMany","message":"slow down"}', retryable: true, errorCode: 'TooMany' },
    { status: 504, body: '', retryable: true, errorCode: undefined },
  ])('HTTP $status → retryable $retryable', async ({ status, body, retryable, errorCode }) => {
    const stub = await stubServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000 });
    try {
      const error = await tesError(client.heartbeatTaskRun('r', {}));
      expect(error).toMatchObject({ code: 'TES_HTTP_ERROR', status, retryable });
      expect(error.errorCode).toBe(errorCode);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('parses Retry-After as seconds or as an HTTP date relative to the clock', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
    let retryAfter = '7';
    const stub = await stubServer((_req, res) => {
      res.writeHead(503, { 'retry-after': retryAfter }).end();
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000, clock });
    try {
      expect((await tesError(client.heartbeatTaskRun('r', {}))).retryAfterMs).toBe(7_000);
      retryAfter = 'Thu, 01 Jan 2026 00:01:00 GMT';
      expect((await tesError(client.heartbeatTaskRun('r', {}))).retryAfterMs).toBe(60_000);
      retryAfter = 'whenever';
      const garbage = await tesError(client.heartbeatTaskRun('r', {}));
      expect(garbage.retryAfterMs).toBeUndefined();
      expect(garbage.retryable).toBe(true);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('keeps a short piece of an error body that is not an ErrorResponse, with the secrets scrubbed', async () => {
    const stub = await stubServer((req, res) => {
      res
        .writeHead(502, { 'content-type': 'text/html' })
        .end(`<html><body>Bad gateway\n for ${req.headers.authorization}</body></html>`);
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000, secrets: new Secrets([TOKEN]) });
    try {
      const error = await tesError(client.getTaskRun('r', { token: TOKEN }));
      expect(error).toMatchObject({ status: 502, retryable: true, errorCode: undefined });
      expect(error.errorMessage).toBe('<html><body>Bad gateway for Bearer [redacted]</body></html>');
      expect(error.message).not.toContain(TOKEN);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('scrubs an ErrorResponse echoing secrets, and cuts a long raw body only after scrubbing', async () => {
    let answer = '';
    const stub = await stubServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end(answer);
    });
    const secrets = new Secrets([TOKEN]);
    secrets.add('jwt', 'rotated-jwt-value');
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000, secrets });
    try {
      answer = JSON.stringify({
        code: 'BadRequest',
        message: `token ${TOKEN} and rotated-jwt-value rejected`,
      });
      const echoed = await tesError(client.getTaskRun('r'));
      expect(echoed).toMatchObject({
        errorCode: 'BadRequest',
        errorMessage: 'token [redacted] and [redacted] rejected',
      });
      // The token straddles the 200-character cut: no piece of it may survive.
      answer = `${'x'.repeat(195)} ${TOKEN} tail`;
      const cut = await tesError(client.getTaskRun('r'));
      expect(cut.errorMessage).toBe(`${'x'.repeat(195)} [red…`);
      expect(cut.message).not.toContain(TOKEN.slice(0, 4));
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('a bearer no header can carry is TES_INVALID_REQUEST, not retryable, and nothing is sent (rule 12)', async () => {
    const stub = await stubServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000 });
    try {
      const error = await tesError(client.heartbeatTaskRun('r', {}, { token: 'bad\r\njwt-value' }));
      expect(error).toMatchObject({ code: 'TES_INVALID_REQUEST', retryable: false });
      expect(error.message).not.toContain('jwt-value');
      expect(stub.requests).toHaveLength(0);
      expect(stub.connections()).toBe(0);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('reads an answer up to 1 MiB; a larger one is TES_RESPONSE_TOO_LARGE, retryable, its connection dropped (rule 21)', async () => {
    /** A JSON answer of exactly `size` bytes. */
    const padded = (size: number) => `{"jwt":"j","padding":"${'x'.repeat(size - 24)}"}`;
    let body = padded(MAX_ANSWER_BYTES);
    const stub = await stubServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000 });
    try {
      expect((await client.heartbeatTaskRun('r', {})).jwt).toBe('j');
      await settle(1);
      expect(stub.connections()).toBe(1);
      body = padded(MAX_ANSWER_BYTES + 1);
      const error = await tesError(client.heartbeatTaskRun('r', {}));
      expect(error).toMatchObject({ code: 'TES_RESPONSE_TOO_LARGE', status: 200, retryable: true });
      body = '{}';
      expect(await client.heartbeatTaskRun('r', {})).toEqual({});
      expect(stub.connections()).toBe(2);
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('a 2xx without a JSON object is a bad response, except that a heartbeat may come back empty or as other JSON', async () => {
    let body = '';
    const stub = await stubServer((_req, res) => {
      res.writeHead(200).end(body);
    });
    const client = new TesClient({ baseUrl: stub.url, timeoutMs: 5_000 });
    try {
      expect(await client.heartbeatTaskRun('r', {})).toEqual({});
      body = '[1]';
      expect(await client.heartbeatTaskRun('r', {})).toEqual({});
      expect(await tesError(client.getTaskRun('r'))).toMatchObject({ code: 'TES_BAD_RESPONSE', status: 200 });
      body = '';
      expect(await tesError(client.listTaskRuns({}))).toMatchObject({
        code: 'TES_BAD_RESPONSE',
        retryable: false,
      });
    } finally {
      await client.close();
      await stub.close();
    }
  });

  it('a 2xx that is not JSON at all is TES_NOT_A_TES: not retryable, naming TES_URL, logged once per kind (rule 20)', async () => {
    let type = 'text/html; charset=utf-8';
    const stub = await stubServer((_req, res) => {
      res.writeHead(200, { 'content-type': type }).end('<!DOCTYPE html><html><body>Welcome</body></html>');
    });
    const client = new TesClient({ baseUrl: `${stub.url}/tes`, timeoutMs: 5_000 });
    try {
      const html = await tesError(client.heartbeatTaskRun('r', {}));
      expect(html).toMatchObject({ code: 'TES_NOT_A_TES', status: 200, retryable: false });
      expect(html.message).toContain('TES_URL');
      expect(html.message).toContain(`${stub.url}/tes/v1/tasks/runs/r:heartbeat`);
      expect(html.message).toContain('text/html');
      expect((await tesError(client.getTaskRun('r'))).logOnce).toBe(html.logOnce);
      type = 'text/plain';
      expect((await tesError(client.heartbeatTaskRun('r', {}))).logOnce).not.toBe(html.logOnce);
    } finally {
      await client.close();
      await stub.close();
    }
  });
});

describe('TesClient timeouts and failures', () => {
  /** Accepts connections and never answers; `stallAfterHeaders` sends headers and half a body first. */
  async function blackHole(stallAfterHeaders = false) {
    const sockets: Socket[] = [];
    const server = createTcpServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      if (stallAfterHeaders)
        socket.once('data', () =>
          socket.write(
            'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jwt":',
          ),
        );
    });
    const port = await listen(server);
    return {
      url: `http://127.0.0.1:${port}`,
      sockets,
      close: async () => {
        for (const s of sockets) s.destroy();
        await closeServer(server);
      },
    };
  }

  it.each([
    { desc: 'a server that accepts and never answers', stall: false },
    { desc: 'a server that stalls in the middle of the body', stall: true },
  ])('times out one call on $desc (TES_TIMEOUT, retryable)', async ({ stall }) => {
    const hole = await blackHole(stall);
    const clock = new FakeClock();
    const client = new TesClient({ baseUrl: hole.url, timeoutMs: 10_000, clock });
    try {
      const pending = tesError(client.heartbeatTaskRun('r', {}));
      await waitFor(() => hole.sockets.length > 0, 5_000, 'a connection');
      await clock.advance(9_999);
      let settled = false;
      void pending.then(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false);
      await clock.advance(1);
      const error = await pending;
      expect(error).toMatchObject({ code: 'TES_TIMEOUT', operation: 'heartbeatTaskRun', retryable: true });
      expect(error.status).toBeUndefined();
    } finally {
      await client.close();
      await hole.close();
    }
  });

  it("the caller's signal aborts a call with the caller's reason", async () => {
    const hole = await blackHole();
    const client = new TesClient({ baseUrl: hole.url, timeoutMs: 60_000, clock: new FakeClock() });
    try {
      const controller = new AbortController();
      const pending = client.getTaskRun('r', { signal: controller.signal });
      await waitFor(() => hole.sockets.length > 0, 5_000, 'a connection');
      const reason = new Error('shutting down');
      controller.abort(reason);
      await expect(pending).rejects.toBe(reason);
    } finally {
      await client.close();
      await hole.close();
    }
  });

  it('a refused connection is TES_NETWORK_ERROR, retryable, with no credentials in the URL', async () => {
    const server = createTcpServer();
    const port = await listen(server);
    await closeServer(server);
    const client = new TesClient({ baseUrl: `http://user:pw@127.0.0.1:${port}`, timeoutMs: 5_000 });
    try {
      const error = await tesError(client.getTaskRun('r'));
      expect(error).toMatchObject({ code: 'TES_NETWORK_ERROR', retryable: true });
      expect(error.url).toBe(`http://127.0.0.1:${port}/v1/tasks/runs/r`);
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.message).not.toContain('pw');
    } finally {
      await client.close();
    }
  });

  it('trusts an extra CA bundle on top of the system CAs, and only with it', async () => {
    const server = createHttpsServer({ cert: tls('server.crt'), key: tls('server.key') }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jwt":"j"}');
    });
    const port = await listen(server);
    const url = `https://localhost:${port}`;
    const trusting = new TesClient({ baseUrl: url, timeoutMs: 5_000, ca: tls('ca.crt') });
    const plain = new TesClient({ baseUrl: url, timeoutMs: 5_000 });
    try {
      expect(await trusting.heartbeatTaskRun('r', {})).toEqual({ jwt: 'j' });
      const error = await tesError(plain.heartbeatTaskRun('r', {}));
      expect(error.code).toBe('TES_NETWORK_ERROR');
      expect(error.message).toMatch(/certificate/i);
    } finally {
      await trusting.close();
      await plain.close();
      await closeServer(server);
    }
  });

  it('refuses a non-http base URL and a non-positive timeout', () => {
    expect(() => new TesClient({ baseUrl: 'ftp://x', timeoutMs: 1 })).toThrow(/http/);
    expect(() => new TesClient({ baseUrl: 'http://x', timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
