// Rule 22 for the webhook: an 'error' event on the admission server after start-up (EMFILE
// on accept when the process runs out of file descriptors) is reported and the server keeps
// answering; without a listener Node would throw it and end the process.
//
// Linux's libuv usually absorbs an accept EMFILE itself (it closes a reserved descriptor,
// accepts and drops the waiting connections: checked here with `ulimit -n`), so the test
// emits the error exactly as net.Server does where it surfaces: ErrnoException, syscall accept.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { readKeyPair, WebhookServer } from '../../src/webhook/server.ts';
import { httpsClient, post, tlsDir } from '../support/webhook-helpers.ts';

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
