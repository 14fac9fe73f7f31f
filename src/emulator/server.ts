// The emulator's HTTP side: routing on the raw path, the contract's order of
// checks (404/405 → 401 → 413 → 415 → 400 → the store's 404/400/409), and JSON
// ErrorResponses for every failure. The rules of runs live in store.ts, the web
// page for people in ui.ts.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { definitionProblems } from '../tes/definition.ts';
import type { CreateTaskRunRequest, HeartbeatTaskRunRequest } from '../tes/types.gen.ts';
import { EmulatorError, parseListQuery, RunStore } from './store.ts';
import { RunTokens, sameSecret } from './tokens.ts';
import { ICON, SCRIPT, STYLE } from './ui-assets.ts';
import {
  ASSET_PATHS,
  CONTENT_SECURITY_POLICY,
  escapeHtml,
  LIST_LIMIT,
  renderPage,
  renderRun,
  renderRunList,
} from './ui.ts';

export interface EmulatorOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** When set, every call needs this bearer or a token issued for the run it touches. */
  token?: string;
  /** Default 90 s. */
  heartbeatTimeoutMs?: number;
  clock?: Clock;
  log?: Logger;
  /** Sees every response as sent (tests validate each body against the definition). */
  onResponse?: (exchange: EmulatorExchange) => void;
}

export interface EmulatorExchange {
  method: string;
  /** The raw request path, without the query. */
  path: string;
  status: number;
  body: string;
}

export interface Emulator {
  /** Base URL like http://127.0.0.1:PORT */
  url: string;
  /** The in-memory runs: tests and simulations create runs here without HTTP. */
  store: RunStore;
  close(): Promise<void>;
  /** The heartbeat bodies accepted for a run, oldest first ([] for an unknown run). */
  heartbeats(runId: string): HeartbeatTaskRunRequest[];
}

export const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 90_000;
const CLOSE_GRACE_MS = 5_000;

type Operation =
  | 'listTaskRuns'
  | 'createTaskRun'
  | 'getTaskRun'
  | 'abortTaskRun'
  | 'heartbeatTaskRun'
  | 'heartbeatLog'
  | 'listPage'
  | 'runPage'
  | 'listPart'
  | 'runPart'
  | 'asset';

interface Route {
  operation: Operation;
  runId?: string;
  /** The definition a body must match; operations without one ignore any body. */
  bodyDefinition?: 'CreateTaskRunRequest' | 'HeartbeatTaskRunRequest';
  /** Served without a bearer: the page's frame and assets, which hold no run data when a token is set. */
  public?: true;
}

interface Reply {
  status: number;
  body: string;
  contentType: string;
  /** Pages and their assets: a strict Content-Security-Policy and friends. */
  page?: true;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';
const RUN_SEGMENT = /^\/v1\/tasks\/runs\/([^/]+)$/;
const LOG_PATH = /^\/emulator\/runs\/([^/]+)\/heartbeats$/;
const RUN_PAGE = /^\/ui\/runs\/([^/]+)$/;
const RUN_PART = /^\/ui\/parts\/runs\/([^/]+)$/;
const ASSETS: Record<string, { contentType: string; body: string }> = {
  [ASSET_PATHS.script]: { contentType: 'text/javascript; charset=utf-8', body: SCRIPT },
  [ASSET_PATHS.style]: { contentType: 'text/css; charset=utf-8', body: STYLE },
  [ASSET_PATHS.icon]: { contentType: 'image/svg+xml', body: ICON },
};
const PAGE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Matches on the raw path, so a percent-encoded `:` or `/` stays inside the id. */
function route(method: string, rawPath: string): Route {
  const methods = routesFor(rawPath);
  if (!methods) throw new EmulatorError(404, 'NotFound', `no such path: ${rawPath}`);
  const found = methods.table[method];
  if (!found) {
    const allowed = Object.keys(methods.table).join(', ');
    throw new EmulatorError(405, 'MethodNotAllowed', `${method} is not allowed here; allowed: ${allowed}`, [
      { allow: allowed },
    ]);
  }
  return methods.runId === undefined ? found : { ...found, runId: methods.runId };
}

function routesFor(rawPath: string): { table: Record<string, Route>; runId?: string } | undefined {
  if (rawPath === '/' || rawPath.startsWith('/ui/')) return pageRoutesFor(rawPath);
  if (rawPath === '/v1/tasks/runs')
    return {
      table: {
        GET: { operation: 'listTaskRuns' },
        POST: { operation: 'createTaskRun', bodyDefinition: 'CreateTaskRunRequest' },
      },
    };
  const log = LOG_PATH.exec(rawPath);
  if (log) {
    const runId = decodeId(log[1] as string);
    return runId === undefined ? undefined : { table: { GET: { operation: 'heartbeatLog' } }, runId };
  }
  const segment = RUN_SEGMENT.exec(rawPath)?.[1];
  if (segment === undefined) return undefined;
  let table: Record<string, Route> = { GET: { operation: 'getTaskRun' } };
  let rawId = segment;
  if (segment.endsWith(':abort')) {
    rawId = segment.slice(0, -':abort'.length);
    table = { PUT: { operation: 'abortTaskRun' } };
  } else if (segment.endsWith(':heartbeat')) {
    rawId = segment.slice(0, -':heartbeat'.length);
    table = { POST: { operation: 'heartbeatTaskRun', bodyDefinition: 'HeartbeatTaskRunRequest' } };
  }
  const runId = decodeId(rawId);
  return runId === undefined ? undefined : { table, runId };
}

/** The web page: its frames, the parts its script fetches (with the API's auth), its assets. */
function pageRoutesFor(rawPath: string): { table: Record<string, Route>; runId?: string } | undefined {
  if (rawPath === '/') return { table: { GET: { operation: 'listPage', public: true } } };
  if (rawPath === '/ui/parts/runs') return { table: { GET: { operation: 'listPart' } } };
  if (Object.hasOwn(ASSETS, rawPath)) return { table: { GET: { operation: 'asset', public: true } } };
  const page = RUN_PAGE.exec(rawPath)?.[1];
  const part = RUN_PART.exec(rawPath)?.[1];
  const runId = decodeId(page ?? part ?? '');
  if (runId === undefined) return undefined;
  const route: Route = page !== undefined ? { operation: 'runPage', public: true } : { operation: 'runPart' };
  return { table: { GET: route }, runId };
}

function decodeId(raw: string): string | undefined {
  try {
    const id = decodeURIComponent(raw);
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}

/** JSON by its media type: what the definition's `consumes` lists. */
function isJsonContentType(value: string | undefined): boolean {
  const type = value?.split(';')[0]?.trim().toLowerCase();
  return (
    type === 'application/json' || type === 'text/json' || /^application\/[^/\s]+\+json$/.test(type ?? '')
  );
}

interface ReadBody {
  size: number;
  /** Undefined when the body was over the limit and discarded. */
  text?: string;
}

/** Reads the whole body, keeping at most MAX_BODY_BYTES: the client must see our answer, not a reset. */
function readBody(req: IncomingMessage): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () =>
      resolve(size <= MAX_BODY_BYTES ? { size, text: Buffer.concat(chunks).toString('utf8') } : { size }),
    );
    req.on('error', reject);
  });
}

export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const clock = options.clock ?? systemClock;
  const log = options.log;
  const tokens = new RunTokens();
  let baseUrl = '';
  const store = new RunStore({
    clock,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    baseUrl: () => baseUrl,
  });

  function authorize(header: string | undefined, target: Route): void {
    if (options.token === undefined || target.public) return;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
    if (bearer !== undefined && sameSecret(bearer, options.token)) return;
    if (bearer !== undefined && target.runId !== undefined && tokens.runOf(bearer) === target.runId) return;
    throw new EmulatorError(
      401,
      'Unauthorized',
      bearer === undefined ? 'a bearer token is required' : 'the bearer token is not valid for this call',
    );
  }

  function parseBody(req: IncomingMessage, body: ReadBody, target: Route): unknown {
    if (body.text === undefined)
      throw new EmulatorError(413, 'PayloadTooLarge', `the body is over ${MAX_BODY_BYTES} bytes`);
    // An empty body is no body, whatever its Content-Type: generated clients send exactly that.
    if (target.bodyDefinition === undefined || body.size === 0) return undefined;
    if (!isJsonContentType(req.headers['content-type']))
      throw new EmulatorError(
        415,
        'UnsupportedMediaType',
        `a body must be JSON (application/json), got '${req.headers['content-type'] ?? 'no Content-Type'}'`,
      );
    let value: unknown;
    try {
      value = JSON.parse(body.text);
    } catch (error) {
      throw new EmulatorError(
        400,
        'MalformedJson',
        `the body is not valid JSON: ${(error as Error).message}`,
      );
    }
    const problems = definitionProblems(target.bodyDefinition, value);
    if (problems.length > 0) {
      const details = problems.map((p) => ({ field: p.path || '(root)', message: p.message }));
      throw new EmulatorError(
        400,
        'InvalidBody',
        `the body does not match ${target.bodyDefinition}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`.slice(
          0,
          4096,
        ),
        details,
      );
    }
    return value;
  }

  /** The reply of a successful call. */
  function dispatch(
    target: Route,
    path: string,
    query: string,
    value: unknown,
    raw: string | undefined,
  ): Reply {
    const runId = target.runId as string;
    const json = (status: number, body: string): Reply => ({ status, body, contentType: JSON_TYPE });
    switch (target.operation) {
      case 'listTaskRuns':
        return json(200, JSON.stringify(store.list(parseListQuery(new URLSearchParams(query)))));
      case 'createTaskRun':
        return json(201, JSON.stringify(store.create(value as CreateTaskRunRequest | undefined)));
      case 'getTaskRun':
        return json(200, JSON.stringify(store.get(runId)));
      case 'abortTaskRun':
        return json(200, JSON.stringify(store.abort(runId)));
      case 'heartbeatTaskRun':
        store.heartbeat(
          runId,
          (value ?? {}) as HeartbeatTaskRunRequest,
          value === undefined ? '{}' : (raw as string),
        );
        return json(200, JSON.stringify({ jwt: tokens.issue(runId, clock.now()) }));
      case 'heartbeatLog': {
        // Stored as received, so the log is their concatenation.
        const bodies = store.heartbeatLog(runId).map((beat) => beat.raw);
        return json(200, `[${bodies.join(',')}]`);
      }
      default:
        return pageReply(target, path);
    }
  }

  /** The page for people. With a token its frame holds no run data: the script fetches the parts. */
  function pageReply(target: Route, path: string): Reply {
    const auth = options.token !== undefined;
    const html = (status: number, body: string): Reply => ({
      status,
      body,
      contentType: HTML_TYPE,
      page: true,
    });
    const listPart = () => renderRunList(store.newest(LIST_LIMIT), clock.now());
    const runPart = () => renderRun(store.activity(target.runId as string), clock.now());
    switch (target.operation) {
      case 'asset':
        return { status: 200, ...(ASSETS[path] as (typeof ASSETS)[string]), page: true };
      case 'listPart':
        return html(200, listPart());
      case 'runPart':
        return html(200, runPart());
      case 'listPage':
        return html(200, renderPage({ title: 'Task runs', auth, content: auth ? '' : listPart() }));
      default: {
        const title = 'Task run';
        if (auth) return html(200, renderPage({ title, auth, content: '' }));
        try {
          return html(200, renderPage({ title, auth, content: runPart() }));
        } catch (error) {
          // An unknown run: a page a person can read, with the API's status.
          if (!(error instanceof EmulatorError)) throw error;
          const problem = `<p class="crumbs"><a href="/">← All runs</a></p>\n<p class="problem">${escapeHtml(error.message)}</p>`;
          return html(error.status, renderPage({ title, auth, content: problem }));
        }
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = clock.now();
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = q === -1 ? '' : rawUrl.slice(q + 1);
    let reply: Reply;
    const headers: Record<string, string> = {};
    let body: ReadBody;
    try {
      body = await readBody(req);
    } catch {
      log?.debug({ method, path }, 'client went away mid-request');
      return;
    }
    try {
      const target = route(method, path);
      authorize(req.headers.authorization, target);
      const value = parseBody(req, body, target);
      reply = dispatch(target, path, query, value, body.text);
    } catch (error) {
      const known =
        error instanceof EmulatorError
          ? error
          : new EmulatorError(500, 'InternalError', 'the emulator failed to handle this request');
      if (!(error instanceof EmulatorError)) log?.error({ err: error, method, path }, 'request failed');
      if (known.status === 405) headers.allow = (known.details[0] as { allow: string }).allow;
      if (known.status === 401) headers['www-authenticate'] = 'Bearer';
      reply = {
        status: known.status,
        body: JSON.stringify({ code: known.code, message: known.message, details: known.details }),
        contentType: JSON_TYPE,
      };
    }
    if (res.destroyed) return;
    const { status, body: text } = reply;
    res.writeHead(status, {
      ...headers,
      ...(reply.page && PAGE_HEADERS),
      'content-type': reply.contentType,
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
    options.onResponse?.({ method, path, status, body: text });
    log?.debug({ method, path, status, durationMs: clock.now() - started }, 'request');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log?.error({ err: error }, 'request handling crashed');
      res.destroy();
    });
  });
  // A malformed request line or header must not take the emulator down.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (error.code !== 'ECONNRESET' && socket.writable) {
      const text = JSON.stringify({ code: 'BadRequest', message: 'malformed HTTP request', details: [] });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    } else socket.destroy();
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    store,
    heartbeats: (runId) => {
      try {
        return store.heartbeatLog(runId).map((beat) => JSON.parse(beat.raw) as HeartbeatTaskRunRequest);
      } catch (error) {
        if (error instanceof EmulatorError) return [];
        throw error;
      }
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        const grace = new AbortController();
        server.close(() => {
          grace.abort();
          resolve();
        });
        // Requests in flight may finish; idle keep-alive connections go now, the rest after a grace.
        server.closeIdleConnections();
        clock.sleep(CLOSE_GRACE_MS, grace.signal).then(
          () => server.closeAllConnections(),
          () => {},
        );
      });
      return closing;
    },
  };
}
