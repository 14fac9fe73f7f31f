// Raw HTTP for emulator tests: exact methods, headers and bodies, including the
// malformed ones a typed client would never send.
import { request } from 'node:http';
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON); loosely typed for terse assertions. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response fields
  json: any;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  token?: string;
}

export function send(baseUrl: string, path: string, options: RawRequest = {}): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes `raw` bytes on a fresh TCP connection and returns everything read until the server closes. */
export function sendRaw(baseUrl: string, raw: string): Promise<string> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(raw));
    let out = '';
    socket.on('data', (c: Buffer) => {
      out += c.toString();
    });
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('sendRaw: no answer')));
  });
}

/** Writes `raw` on a fresh TCP connection and hangs up at once, mid-request. */
export function hangUp(baseUrl: string, raw: string): Promise<void> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () =>
      socket.write(raw, () => {
        socket.destroy();
        resolve();
      }),
    );
    socket.on('error', reject);
  });
}
