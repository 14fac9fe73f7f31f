// A small in-memory Kubernetes API server: pods, nodes and jobs with get, list and
// watch answered as a real API server answers them (resourceVersions, replay from a
// resourceVersion, 410 inside a 200 stream once history is compacted, Status bodies).
// The tests and `tes-heartbeat demo` stand it in for a cluster; the test controls
// (injected failures, dropped streams, forbidden resources) make the bad days reproducible.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { type Clock, systemClock } from '../clock.ts';
import type { VersionInfo, WatchEventType } from '../kube/types.ts';
import { EVENTS_COLLECTION, FakeEvents, type FakeReply as Reply, kubeStatus } from './fake-kube-events.ts';
import { FakeLeases, LEASES_PATH } from './fake-kube-leases.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export type KubeResource = 'pods' | 'nodes' | 'jobs';

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
}

export interface RequestMatch {
  method?: string;
  /** Exact path, or a pattern tested against it. */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
}

/** How an injected failure answers: a Status with this code, a dropped connection, or no answer. */
export type Failure = { status: number; reason?: string; message?: string } | 'drop' | 'hang';

export interface FakeKubeApiOptions {
  /** PEM strings. Without them the server speaks plain HTTP and the kubeconfig skips TLS verification. */
  tls?: { cert: string; key: string; ca: string };
  /** The bearer every request must carry (401 otherwise). */
  token?: string;
  host?: string;
  port?: number;
  /** Drives watch `timeoutSeconds` and creation timestamps. */
  clock?: Clock;
  /** Events kept for replay; older resourceVersions answer 410. */
  historyLimit?: number;
  /** Time a LIST takes per item it returns (a consistent read of thousands of objects is slow). */
  listCostMsPerItem?: number;
}

interface ResourceType {
  prefix: string;
  apiVersion: string;
  kind: string;
  namespaced: boolean;
}

const RESOURCES: Record<KubeResource, ResourceType> = {
  pods: { prefix: '/api/v1', apiVersion: 'v1', kind: 'Pod', namespaced: true },
  nodes: { prefix: '/api/v1', apiVersion: 'v1', kind: 'Node', namespaced: false },
  jobs: { prefix: '/apis/batch/v1', apiVersion: 'batch/v1', kind: 'Job', namespaced: true },
};

const ROUTE = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/;

interface Scope {
  resource: KubeResource;
  namespace?: string | undefined;
  name?: string | undefined;
}

interface HistoryEntry {
  rv: number;
  resource: KubeResource;
  type: WatchEventType;
  object: KubeObject;
}

interface Watcher {
  scope: Scope;
  bookmarks: boolean;
  res: ServerResponse;
  socket: Socket;
}

export const DEFAULT_FAKE_TOKEN = 'fake-kube-token-4f1d2c';

export class FakeKubeApiServer {
  /** Every request received, in order (failed and refused ones included). */
  readonly requests: RequestRecord[] = [];
  /** The Events API: what was recorded, and a switch to forbid it (fake-kube-events.ts). */
  readonly events = new FakeEvents();
  /** The Lease API (fake-kube-leases.ts): resourceVersions from this server's counter. */
  readonly leases = new FakeLeases(() => String(++this.rv));
  private readonly objects = new Map<string, KubeObject>();
  private history: HistoryEntry[] = [];
  private rv = 1000;
  /** Watches from a resourceVersion below this answer 410. */
  private oldestRv = 1000;
  /** Connections accepted so far (TLS handshakes, with HTTPS). */
  connections = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private readonly failures: { match: RequestMatch; failure: Failure; left: number }[] = [];
  private readonly forbidden = new Set<string>();
  private version: VersionInfo = { major: '1', minor: '31', gitVersion: 'v1.31.0', platform: 'linux/amd64' };
  private uids = 0;
  private readonly closing = new AbortController();

  private readonly server: Server;
  private readonly options: FakeKubeApiOptions;
  private readonly clock: Clock;
  /** The bearer token the kubeconfig carries and every request must present. */
  readonly token: string;

  private constructor(server: Server, options: FakeKubeApiOptions) {
    this.server = server;
    this.options = options;
    this.token = options.token ?? DEFAULT_FAKE_TOKEN;
    this.clock = options.clock ?? systemClock;
  }

  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApiServer> {
    const server = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key })
      : createHttpServer();
    const fake = new FakeKubeApiServer(server, options);
    server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true); // small JSON answers must not wait for delayed ACKs
      fake.connections++;
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => fake.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get url(): string {
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('fake kube api: not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  /** The server's current resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** A kubeconfig (YAML) for this server with its CA and bearer token. */
  kubeconfig(namespace = 'default'): string {
    const cluster = this.options.tls
      ? `certificate-authority-data: ${Buffer.from(this.options.tls.ca).toString('base64')}`
      : 'insecure-skip-tls-verify: true';
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      `    ${cluster}`,
      'users:',
      '- name: fake',
      '  user:',
      `    token: ${this.token}`,
      'contexts:',
      '- name: fake',
      `  context: {cluster: fake, user: fake, namespace: ${namespace}}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  // ---- objects ----

  /** Creates or replaces an object (ADDED or MODIFIED); returns the stored copy. */
  set(resource: KubeResource, object: KubeObject): KubeObject {
    const type = RESOURCES[resource];
    const stored = structuredClone(object);
    stored.metadata ??= {};
    const metadata = stored.metadata;
    if (!metadata.name) throw new Error('fake kube api: object without metadata.name');
    if (type.namespaced) metadata.namespace ??= 'default';
    else delete metadata.namespace;
    const key = keyOf(resource, metadata.namespace, metadata.name);
    const previous = this.objects.get(key);
    stored.apiVersion = type.apiVersion;
    stored.kind = type.kind;
    metadata.uid =
      previous?.metadata?.uid ??
      metadata.uid ??
      `00000000-0000-4000-8000-${String(++this.uids).padStart(12, '0')}`;
    metadata.creationTimestamp ??=
      previous?.metadata?.creationTimestamp ?? new Date(this.clock.now()).toISOString();
    metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, stored);
    this.record(resource, previous ? 'MODIFIED' : 'ADDED', stored);
    return structuredClone(stored);
  }

  get(resource: KubeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.objects.get(
      keyOf(resource, RESOURCES[resource].namespaced ? namespace : undefined, name),
    );
    return object && structuredClone(object);
  }

  /** Deletes an object (DELETED, carrying a new resourceVersion); false if there was none. */
  delete(resource: KubeResource, namespace: string | undefined, name: string): boolean {
    const key = keyOf(resource, RESOURCES[resource].namespaced ? namespace : undefined, name);
    const object = this.objects.get(key);
    if (!object) return false;
    this.objects.delete(key);
    object.metadata = { ...object.metadata, resourceVersion: String(++this.rv) };
    this.record(resource, 'DELETED', object);
    return true;
  }

  // ---- test controls ----

  /** Forgets the event history: watches from any older resourceVersion get 410 Gone. */
  compact(): void {
    this.history = [];
    this.oldestRv = this.rv;
  }

  /** The next `count` requests matching `match` fail as `failure` says. */
  failNext(match: RequestMatch, failure: Failure, count = 1): void {
    this.failures.push({ match, failure, left: count });
  }

  /** Answers 403 for a resource (in one namespace, or everywhere). */
  forbid(resource: KubeResource, namespace?: string): void {
    this.forbidden.add(`${resource}/${namespace ?? '*'}`);
  }

  allow(resource: KubeResource, namespace?: string): void {
    this.forbidden.delete(`${resource}/${namespace ?? '*'}`);
  }

  setVersion(version: Partial<VersionInfo>): void {
    this.version = { ...this.version, ...version };
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that allows them. */
  bookmark(): void {
    for (const watcher of this.watchers) {
      if (!watcher.bookmarks) continue;
      const type = RESOURCES[watcher.scope.resource];
      const object = {
        apiVersion: type.apiVersion,
        kind: type.kind,
        metadata: { resourceVersion: this.resourceVersion },
      };
      send(watcher.res, 'BOOKMARK', object);
    }
  }

  /** Writes a raw line into every open watch stream (a broken proxy, a truncated event). */
  writeToWatches(line: string, options: { newline?: boolean } = {}): void {
    const text = options.newline === false ? line : `${line}\n`;
    for (const watcher of this.watchers) watcher.res.write(text);
  }

  /** Sends an ERROR event carrying `status` (a Status body) to every open watch, then ends it. */
  failWatches(status: Record<string, unknown>): void {
    for (const watcher of this.watchers) {
      this.watchers.delete(watcher);
      send(watcher.res, 'ERROR', {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        ...status,
      });
      watcher.res.end();
    }
  }

  /** Ends every open watch stream normally, as a server does at `timeoutSeconds`. */
  endWatches(): void {
    for (const watcher of this.watchers) {
      this.watchers.delete(watcher);
      watcher.res.end();
    }
  }

  /** Destroys the connection of every open watch stream (a reset, not an end). */
  dropWatches(): void {
    for (const watcher of this.watchers) {
      this.watchers.delete(watcher);
      watcher.socket.destroy();
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- serving ----

  private record(resource: KubeResource, type: WatchEventType, object: KubeObject): void {
    const entry = { rv: this.rv, resource, type, object: structuredClone(object) };
    this.history.push(entry);
    const limit = this.options.historyLimit ?? 1000;
    if (this.history.length > limit) {
      this.history.splice(0, this.history.length - limit);
      this.oldestRv = (this.history[0]?.rv ?? this.rv) - 1;
    }
    for (const watcher of this.watchers) {
      if (matches(watcher.scope, entry)) send(watcher.res, type, entry.object);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const reply = this.answer(req, res);
    if (reply) json(res, reply.code, reply.body);
  }

  /** The reply to send, or undefined when the request was answered otherwise (a watch, a drop, a hang). */
  private answer(req: IncomingMessage, res: ServerResponse): Reply | undefined {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === '1' || query.watch === 'true';
    const record: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query, watch };
    this.requests.push(record);

    const injected = this.failures.find((f) => f.left > 0 && requestMatches(f.match, record));
    if (injected) {
      injected.left--;
      if (injected.failure === 'drop') {
        req.socket.destroy();
        return undefined;
      }
      if (injected.failure === 'hang') return undefined;
      const { status, reason, message } = injected.failure;
      return kubeStatus(status, reason ?? reasonFor(status), message ?? `injected failure ${status}`);
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return kubeStatus(401, 'Unauthorized', 'Unauthorized');
    }
    const eventsNamespace = EVENTS_COLLECTION.exec(url.pathname)?.[1];
    if (eventsNamespace !== undefined && record.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const reply = this.events.create(
          decodeURIComponent(eventsNamespace),
          Buffer.concat(chunks).toString('utf8'),
          this.clock.now(),
        );
        json(res, reply.code, reply.body);
      });
      return undefined;
    }
    const lease = LEASES_PATH.exec(url.pathname);
    if (lease) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const name = lease[2] === undefined ? undefined : decodeURIComponent(lease[2]);
        const reply = this.leases.handle(
          record.method,
          decodeURIComponent(lease[1] ?? ''),
          name,
          Buffer.concat(chunks).toString('utf8'),
          this.clock.now(),
        );
        json(res, reply.code, reply.body);
      });
      return undefined;
    }
    if (record.method !== 'GET') {
      return kubeStatus(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }
    if (url.pathname === '/version') return { code: 200, body: this.version };

    const route = ROUTE.exec(url.pathname);
    const resource = route?.[3] as KubeResource | undefined;
    const type = resource && Object.hasOwn(RESOURCES, resource) ? RESOURCES[resource] : undefined;
    if (
      !route ||
      !resource ||
      !type ||
      type.prefix !== route[1] ||
      (route[2] !== undefined && !type.namespaced)
    ) {
      return kubeStatus(404, 'NotFound', 'the server could not find the requested resource');
    }
    const namespace = route[2] && decodeURIComponent(route[2]);
    const name = route[4] && decodeURIComponent(route[4]);
    if (this.forbidden.has(`${resource}/*`) || this.forbidden.has(`${resource}/${namespace}`)) {
      const verb = name ? 'get' : watch ? 'watch' : 'list';
      const group = type.apiVersion.includes('/') ? type.apiVersion.split('/')[0] : '';
      const where = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
      return kubeStatus(
        403,
        'Forbidden',
        `${resource}${name ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:default:fake" cannot ${verb} resource "${resource}" in API group "${group}"${where}`,
        { name, kind: resource },
      );
    }
    if (name) {
      const object = this.objects.get(keyOf(resource, namespace, name));
      if (!object)
        return kubeStatus(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
      return { code: 200, body: object };
    }

    const scope: Scope = { resource, namespace };
    for (const term of (query.fieldSelector ?? '').split(',').filter(Boolean)) {
      const [field, value] = term.split(/==?/);
      if (field === 'metadata.name') scope.name = value;
      else if (field === 'metadata.namespace') scope.namespace = value;
      else
        return kubeStatus(
          400,
          'BadRequest',
          `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
        );
    }
    if (watch) return this.watch(req, res, scope, query);
    return this.list(res, scope, type, query);
  }

  /**
   * A LIST, paged with `limit`/`continue` as the API server pages it (items in key
   * order, the continue token holding the snapshot's resourceVersion and the last key;
   * a token older than the compacted history answers 410 Expired). With
   * `listCostMsPerItem`, the answer takes that long per item returned, as a consistent
   * read of a big collection does.
   */
  private list(
    res: ServerResponse,
    scope: Scope,
    type: ResourceType,
    query: Record<string, string>,
  ): Reply | undefined {
    let snapshot = this.resourceVersion;
    let after = '';
    if (query.continue) {
      try {
        ({ rv: snapshot, after } = JSON.parse(Buffer.from(query.continue, 'base64url').toString('utf8')));
      } catch {
        return kubeStatus(400, 'BadRequest', 'continue key is not valid');
      }
      if (Number(snapshot) < this.oldestRv) {
        return kubeStatus(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
    }
    const all = [...this.objects.entries()]
      .filter(
        ([key, object]) =>
          key.startsWith(`${scope.resource}/`) &&
          key > after &&
          matches(scope, { resource: scope.resource, object }),
      )
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const limit = Number(query.limit);
    const page = limit > 0 ? all.slice(0, limit) : all;
    const metadata: Record<string, unknown> = { resourceVersion: snapshot };
    const last = page.at(-1)?.[0];
    if (page.length < all.length && last !== undefined) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: snapshot, after: last })).toString('base64url');
      metadata.remainingItemCount = all.length - page.length;
    }
    const reply: Reply = {
      code: 200,
      body: {
        apiVersion: type.apiVersion,
        kind: `${type.kind}List`,
        metadata,
        items: page.map(([, { apiVersion: _a, kind: _k, ...rest }]) => rest),
      },
    };
    const cost = (this.options.listCostMsPerItem ?? 0) * page.length;
    if (cost <= 0) return reply;
    this.clock
      .sleep(cost, this.closing.signal)
      .then(() => json(res, reply.code, reply.body))
      .catch(() => {});
    return undefined;
  }

  private watch(
    req: IncomingMessage,
    res: ServerResponse,
    scope: Scope,
    query: Record<string, string>,
  ): Reply | undefined {
    const from = query.resourceVersion;
    const fromRv = from === undefined || from === '' || from === '0' ? undefined : Number(from);
    if (fromRv !== undefined && !Number.isSafeInteger(fromRv)) {
      return kubeStatus(400, 'BadRequest', `invalid resource version: ${from}`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    if (fromRv !== undefined && fromRv < this.oldestRv) {
      send(res, 'ERROR', {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${fromRv} (${this.oldestRv})`,
        reason: 'Expired',
        code: 410,
      });
      res.end();
      return undefined;
    }
    if (fromRv === undefined) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const [key, object] of this.objects) {
        if (key.startsWith(`${scope.resource}/`) && matches(scope, { resource: scope.resource, object })) {
          send(res, 'ADDED', object);
        }
      }
    } else {
      for (const entry of this.history) {
        if (entry.rv > fromRv && matches(scope, entry)) send(res, entry.type, entry.object);
      }
    }
    const watcher: Watcher = {
      scope,
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
      socket: req.socket,
    };
    this.watchers.add(watcher);
    const stop = new AbortController();
    const forget = () => {
      this.watchers.delete(watcher);
      stop.abort();
    };
    res.on('finish', forget);
    res.on('close', forget);
    const timeoutSeconds = Number(query.timeoutSeconds);
    if (timeoutSeconds > 0) {
      this.clock
        .sleep(timeoutSeconds * 1000, AbortSignal.any([stop.signal, this.closing.signal]))
        .then(() => res.end())
        .catch(() => {});
    }
    return undefined;
  }
}

function keyOf(resource: KubeResource, namespace: string | undefined, name: string): string {
  return `${resource}/${namespace ?? ''}/${name}`;
}

function matches(scope: Scope, entry: { resource: KubeResource; object: KubeObject }): boolean {
  const metadata = entry.object.metadata ?? {};
  return (
    entry.resource === scope.resource &&
    (scope.namespace === undefined || metadata.namespace === scope.namespace) &&
    (scope.name === undefined || metadata.name === scope.name)
  );
}

function requestMatches(match: RequestMatch, request: RequestRecord): boolean {
  if (match.method !== undefined && match.method !== request.method) return false;
  if (match.watch !== undefined && match.watch !== request.watch) return false;
  if (typeof match.path === 'string') return match.path === request.path;
  return match.path === undefined || match.path.test(request.path);
}

function send(res: ServerResponse, type: WatchEventType, object: unknown): void {
  res.write(`${JSON.stringify({ type, object })}\n`);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function reasonFor(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    409: 'Conflict',
    410: 'Gone',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  };
  return reasons[status] ?? 'Unknown';
}
