// The health and metrics listener (HTTP_ADDR). The task's containers share the
// pod's network: a port already taken is logged once and the command goes on.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../log.ts';

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ListenerOptions {
  host: string;
  port: number;
  log: Logger;
  /** Whether the command's loop is alive (it ticked lately). */
  healthy(): boolean;
  readiness(): Readiness;
  metrics(): Promise<{ contentType: string; body: string }>;
  /**
   * The address is taken (EADDRINUSE): in a pod that means another container listens
   * there and answers whoever scrapes it (rule T5). Called once, after the error log.
   */
  onPortTaken?(address: string): void;
}

export interface Listener {
  port: number;
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener | undefined> {
  const { log } = options;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return options.healthy()
          ? send(200, 'text/plain', 'ok\n')
          : send(503, 'text/plain', 'the heartbeat loop has not ticked lately\n');
      case '/readyz': {
        const r = options.readiness();
        return r.ready
          ? send(200, 'application/json', '{"ready":true}\n')
          : send(503, 'application/json', `${JSON.stringify({ ready: false, reason: r.reason })}\n`);
      }
      case '/metrics':
        return void options.metrics().then(
          (m) => send(200, m.contentType, m.body),
          (error: unknown) => {
            log.warn({ err: error }, 'collecting metrics failed');
            send(500, 'text/plain', 'metrics unavailable\n');
          },
        );
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
  server.keepAliveTimeout = 5_000;
  try {
    await listen(server, options.host, options.port);
  } catch (error) {
    const address = `${options.host}:${options.port}`;
    log.error({ err: error, address }, 'health and metrics listener not started');
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') options.onPortTaken?.(address);
    return undefined;
  }
  // Rule 22: a late server error (EMFILE on accept) is logged; it must not end the process.
  server.on('error', (error) => log.error({ err: error }, 'health and metrics listener error; it goes on'));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
