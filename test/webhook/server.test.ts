// Rule 22 for the webhook: an 'error' event on the admission server after start-up (EMFILE
// on accept when the process runs out of file descriptors) is reported and the server keeps
// answering; without a listener Node would throw it and end the process.
//
// Linux's libuv usually absorbs an accept EMFILE itself (it closes a reserved descriptor,
// accepts and drops the waiting connections: checked here with `ulimit -n`), so the test
// emits the error exactly as net.Server does where it surfaces: ErrnoException, syscall accept.
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { createAdmissionHandler, MAX_REVIEW_BYTES } from '../../src/webhook/handler.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { readKeyPair, WebhookServer } from '../../src/webhook/server.ts';
import {
  admissionReview,
  fixtures,
  handshake,
  httpsClient,
  jobPod,
  loadTemplate,
  post,
  readTls,
  review,
  sendOversized,
  silentLogger,
  tlsDir,
} from '../support/webhook-helpers.ts';

let server: WebhookServer | undefined;
afterEach(async () => {
  await server?.close(500);
  server = undefined;
});

function acceptError(): NodeJS.ErrnoException {
  return Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' });
}

describe('WebhookServer after start-up', () => {
  it("reports an 'error' event (EMFILE on accept) and goes on serving", async () => {
    const errors: Error[] = [];
    server = new WebhookServer({
      clock: systemClock,
      handler: (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
      onError: (error) => errors.push(error),
    });
    server.setCertificate(await readKeyPair(`${tlsDir}/server.crt`, `${tlsDir}/server.key`));
    const { port } = await server.listen('127.0.0.1', 0);
    const client = await httpsClient();
    try {
      expect((await post(client, port, '{}', '/mutate')).status).toBe(200);
      // The node:https Server inside, as the accept path would see it.
      const inner = Reflect.get(server, 'server') as import('node:events').EventEmitter;
      expect(() => inner.emit('error', acceptError())).not.toThrow();
      expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EMFILE']);
      expect((await post(client, port, '{}', '/mutate')).status).toBe(200);
    } finally {
      await client.close();
    }
  });

  it('still refuses a port in use at start-up (listen rejects, no listener left behind)', async () => {
    const first = new WebhookServer({ clock: systemClock, handler: () => {}, onError: () => {} });
    const { port } = await first.listen('127.0.0.1', 0);
    const errors: Error[] = [];
    server = new WebhookServer({ clock: systemClock, handler: () => {}, onError: (e) => errors.push(e) });
    await expect(server.listen('127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(errors).toEqual([]);
    await first.close(100);
  });
});

/** The admission endpoint as the webhook runs it (its handler, its server), on `cert`/`key`. */
async function admissionServer(cert: string, key: string) {
  const template = await loadTemplate();
  const metrics = createWebhookMetrics({ processMetrics: false });
  const admission = new WebhookServer({
    clock: systemClock,
    onError: () => {},
    handler: createAdmissionHandler({
      mutateOptions: () => ({ template, mode: 'native', selfName: 'tes-heartbeat', taskServiceAccounts: [] }),
      metrics,
      logger: silentLogger,
      closing: () => false,
    }),
  });
  admission.setCertificate(await readKeyPair(cert, key));
  // What the server read off each connection, counted on the raw TCP socket under TLS.
  const bytesRead: number[] = [];
  const inner = Reflect.get(admission, 'server') as import('node:https').Server;
  inner.on('secureConnection', (socket: TLSSocket) => {
    const tcp = Reflect.get(socket, '_parent') ?? socket;
    socket.on('close', () => bytesRead.push((tcp as import('node:net').Socket).bytesRead));
  });
  server = admission;
  const { port } = await admission.listen('127.0.0.1', 0);
  return { port, bytesRead };
}

const RSA = {
  cert: path.join(fixtures, 'webhook/server-rsa.crt'),
  key: path.join(fixtures, 'webhook/server-rsa.key'),
};
const ECDSA = { cert: `${tlsDir}/server.crt`, key: `${tlsDir}/server.key` };

describe('T8: a body larger than kube-apiserver would send', () => {
  it('stops reading at 3 MiB: 413, connection closed, the rest never read', async () => {
    const { port, bytesRead } = await admissionServer(ECDSA.cert, ECDSA.key);
    const total = 64 * 1024 * 1024;
    const sent = await sendOversized(port, total);
    expect(sent.finished).toBe(false);
    expect(sent.written).toBeLessThan(total);
    expect(sent.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(sent.answer.toLowerCase()).toContain('connection: close');
    // The server read the limit and what was in flight, never the body (kernel buffers aside).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(bytesRead).toHaveLength(1);
    expect(bytesRead[0]).toBeGreaterThan(MAX_REVIEW_BYTES);
    expect(bytesRead[0]).toBeLessThan(MAX_REVIEW_BYTES + 4 * 1024 * 1024);
  });

  it('refuses a declared Content-Length over the limit at once, before any of the body arrives', async () => {
    const { port } = await admissionServer(ECDSA.cert, ECDSA.key);
    const { connect } = await import('node:tls');
    const ca = (await readTls('ca')).cert;
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // Headers only: a server that waited for the 1 GiB would never answer.
    socket.write(
      `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${1024 ** 3}\r\n\r\n`,
    );
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('still answers a review just under the limit', async () => {
    const { port } = await admissionServer(ECDSA.cert, ECDSA.key);
    const client = await httpsClient();
    try {
      const pod = jobPod();
      pod.metadata = {
        ...pod.metadata,
        annotations: { 'tes-heartbeat/run-id': 'r', pad: 'x'.repeat(MAX_REVIEW_BYTES - 4096) },
      };
      const answer = await review(client, port, admissionReview(pod));
      expect(answer.status).toBe(200);
      expect(answer.body.response.patchType).toBe('JSONPatch');
    } finally {
      await client.close();
    }
  });
});

describe('T8: TLS 1.2 and 1.3 only, forward-secret AEAD suites only', () => {
  const weak = [
    { desc: 'static RSA key exchange', ciphers: 'AES128-SHA256', maxVersion: 'TLSv1.2' as const },
    { desc: 'static RSA, GCM', ciphers: 'AES128-GCM-SHA256', maxVersion: 'TLSv1.2' as const },
    { desc: 'CBC with SHA-1', ciphers: 'ECDHE-RSA-AES128-SHA', maxVersion: 'TLSv1.2' as const },
    { desc: 'CBC with SHA-256', ciphers: 'ECDHE-RSA-AES128-SHA256', maxVersion: 'TLSv1.2' as const },
  ];

  it.each(weak)(
    'refuses $desc ($ciphers) with an RSA certificate, as the chart generates',
    async ({ ciphers, maxVersion }) => {
      const { port } = await admissionServer(RSA.cert, RSA.key);
      expect(await handshake(port, { ciphers, maxVersion })).toBeInstanceOf(Error);
    },
  );

  it('refuses CBC with an ECDSA certificate (cert-manager can issue those)', async () => {
    const { port } = await admissionServer(ECDSA.cert, ECDSA.key);
    expect(
      await handshake(port, { ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' }),
    ).toBeInstanceOf(Error);
    expect(
      await handshake(port, { ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', maxVersion: 'TLSv1.2' }),
    ).toEqual({
      protocol: 'TLSv1.2',
      cipher: 'ECDHE-ECDSA-CHACHA20-POLY1305',
    });
  });

  it('refuses TLS 1.1 (a client allowed to offer it)', async () => {
    const { port } = await admissionServer(RSA.cert, RSA.key);
    const old = await handshake(port, {
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      // OpenSSL 3 would not even offer TLS 1.1 at its default security level.
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    expect(old).toBeInstanceOf(Error);
    expect((old as NodeJS.ErrnoException).code).not.toBe('ERR_SSL_NO_PROTOCOLS_AVAILABLE');
  });

  it('accepts ECDHE with AES-GCM or ChaCha20-Poly1305 on TLS 1.2, and TLS 1.3, also after a certificate rotation', async () => {
    const { port } = await admissionServer(RSA.cert, RSA.key);
    for (const cipher of [
      'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-RSA-CHACHA20-POLY1305',
    ]) {
      expect(await handshake(port, { ciphers: cipher, maxVersion: 'TLSv1.2' })).toEqual({
        protocol: 'TLSv1.2',
        cipher,
      });
    }
    expect(await handshake(port, {})).toMatchObject({ protocol: 'TLSv1.3' });
    // A rotated certificate (setSecureContext builds a new context) keeps the same rules.
    server?.setCertificate(await readKeyPair(ECDSA.cert, ECDSA.key));
    expect(
      await handshake(port, { ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' }),
    ).toBeInstanceOf(Error);
    expect(await handshake(port, {})).toMatchObject({ protocol: 'TLSv1.3' });
  });
});

describe('readKeyPair: a certificate rewritten in place', () => {
  // A writer that does not swap files atomically truncates tls.crt first: read at that
  // moment, the pair is an empty certificate and the old key. TLS accepts it and would
  // serve no certificate at all (every handshake fails); it must count as not yet usable.
  it('refuses an empty certificate, a truncated one and a key of another certificate', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'webhook-pair-'));
    const first = await readTls('server');
    const second = await readTls('server2');
    const pair = async (cert: string, key: string) => {
      await writeFile(path.join(dir, 'tls.crt'), cert);
      await writeFile(path.join(dir, 'tls.key'), key);
      return readKeyPair(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'));
    };
    await expect(pair('', first.key)).rejects.toThrow(/do not make a usable pair/);
    await expect(pair(second.cert.slice(0, 300), first.key)).rejects.toThrow(/do not make a usable pair/);
    await expect(pair(second.cert, first.key)).rejects.toThrow(/do not make a usable pair/);
    await expect(pair(second.cert, second.key)).resolves.toEqual({ cert: second.cert, key: second.key });
  });
});
