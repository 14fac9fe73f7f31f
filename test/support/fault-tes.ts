// A fault-injecting TES for the agent's tests: real HTTP on loopback, answers
// scripted per request (status, headers, body, a hang, a dropped connection),
// and a record of every request with its connection, arrival order and overlap.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';

export type Reply =
  /**
   * An answer, after `afterMs` of real time when given: `body` as JSON, or `raw` sent
   * as it is (an HTML page, a text/plain error, an oversized body) with only `headers`.
   */
  | {
      status: number;
      headers?: Record<string, string>;
      body?: unknown;
      raw?: string | Buffer;
      afterMs?: number;
    }
  /** Accept the request and never answer (until the server closes). */
  | { hang: true }
  /** Destroy the connection without an answer. */
  | { drop: true };

export interface RecordedHeartbeat {
  runId: string;
  body: HeartbeatTaskRunRequest;
  authorization: string | undefined;
  /** Which TCP connection carried it (client port). */
  connection: number;
  /** Requests in flight when this one arrived, itself included. */
  inFlight: number;
  /** When it arrived whole (performance.now() of the test process): who sent when, across processes. */
  at: number;
}

export class FaultTes {
  readonly requests: RecordedHeartbeat[] = [];
  private readonly script: Reply[] = [];
  private fallback: Reply = { status: 200, body: {} };
  /** Per run id, the answer to every heartbeat of that run (before the script and the fallback). */
  private readonly perRun = new Map<string, Reply>();
  private inFlight = 0;
  maxInFlight = 0;
  private readonly server = createServer((req, res) => this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  url = '';

  /** Replies for the next requests, in order; afterwards `fallback`. */
  reply(...replies: Reply[]): void {
    this.script.push(...replies);
  }

  setFallback(reply: Reply): void {
    this.fallback = reply;
  }

  /** Answers every heartbeat of `runId` with `reply` (undefined: as the others again). */
  setRunReply(runId: string, reply: Reply | undefined): void {
    if (reply) this.perRun.set(runId, reply);
    else this.perRun.delete(runId);
  }

  /** Distinct TCP connections seen so far. */
  connections(): number {
    return new Set(this.requests.map((r) => r.connection)).size;
  }

  async start(): Promise<this> {
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const inFlight = this.inFlight;
    let done = false;
    const finish = () => {
      if (!done) this.inFlight--;
      done = true;
    };
    res.on('close', finish);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const match = /^\/v1\/tasks\/runs\/([^/]+):heartbeat$/.exec(req.url ?? '');
      const text = Buffer.concat(chunks).toString('utf8');
      this.requests.push({
        runId: decodeURIComponent(match?.[1] ?? ''),
        body: text ? (JSON.parse(text) as HeartbeatTaskRunRequest) : {},
        authorization: req.headers.authorization,
        connection: req.socket.remotePort ?? 0,
        inFlight,
        at: performance.now(),
      });
      const runId = decodeURIComponent(match?.[1] ?? '');
      const reply = this.perRun.get(runId) ?? this.script.shift() ?? this.fallback;
      if ('hang' in reply) return;
      if ('drop' in reply) {
        req.socket.destroy();
        return;
      }
      const answer = () => {
        if (reply.raw !== undefined) {
          res.writeHead(reply.status, reply.headers);
          res.end(reply.raw);
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(JSON.stringify(reply.body ?? {}));
      };
      if (reply.afterMs) setTimeout(answer, reply.afterMs);
      else answer();
    });
  }
}
