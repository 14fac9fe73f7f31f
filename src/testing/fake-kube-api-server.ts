// A small in-memory Kubernetes API server: pods, nodes and jobs with get, list, watch,
// patch and delete answered as a real API server answers them (resourceVersions, replay
// from a resourceVersion, 410 inside a 200 stream once history is compacted, label and
// field selectors applied server-side, the watch cache's ADDED/DELETED when an object
// enters or leaves a selection, merge and JSON patches with resourceVersion
// preconditions, graceful deletion held by finalizers, Status bodies). The tests,
// `tes-heartbeat demo` and the benchmarks stand it in for a cluster; the test controls
// (injected failures, dropped streams, forbidden resources, tokens cut off or revoked)
// make the bad days reproducible. Other resource groups plug in with `extend`
// (fake-kube-events.ts is one).
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
import { FakeEvents, type FakeReply as Reply, kubeStatus } from './fake-kube-events.ts';
import { FakeLeases } from './fake-kube-leases.ts';
import { jsonPatch, mergePatch, PatchError, sameJson } from './fake-kube-patch.ts';
import {
  type ObjectFilter,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from './fake-kube-selectors.ts';

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
  /** The bearer token the request carried (undefined without one). */
  token: string | undefined;
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

/** A request as an extension group sees it (already authenticated). */
export interface FakeApiRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The request body as received ('' for a GET). */
  body: string;
  contentType: string;
  token: string | undefined;
}

/** What the server lends an extension group: its clock and its resourceVersion counter. */
export interface FakeApiContext {
  now(): number;
  /** The next resourceVersion of the server (one counter for every resource, as etcd's). */
  nextResourceVersion(): string;
}

/** Another resource group served by the fake (Events, Leases): answers its own paths. */
export interface FakeApiGroup {
  /** The reply for a request this group serves, or undefined to leave it to the server. */
  serve(request: FakeApiRequest, context: FakeApiContext): Reply | undefined;
}

export interface FakeKubeApiOptions {
  /** PEM strings. Without them the server speaks plain HTTP and the kubeconfig skips TLS verification. */
  tls?: { cert: string; key: string; ca: string };
  /** The first bearer token accepted (401 without an accepted one); more with `addToken`. */
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

/** How a kubeconfig's user authenticates: a token of its own, or a token file read as it rotates. */
export interface KubeconfigUser {
  token?: string;
  /** kubectl's `tokenFile`: the file is re-read by the client, not copied into the kubeconfig. */
  tokenFile?: string;
}

export interface DeleteOptions {
  /** Seconds the object may take to terminate; 0 removes it now unless finalizers hold it. */
  gracePeriodSeconds?: number;
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

/** kube-apiserver's cap on a request body. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

interface HistoryEntry {
  rv: number;
  resource: KubeResource;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The new state (for DELETED: the last state, carrying the deletion's resourceVersion). */
  object: KubeObject;
  /** The state before the change (none for ADDED). */
  previous: KubeObject | undefined;
  /** Each watch line serialized once, whatever the number of watchers (the cacher's cachingObject). */
  lines: Partial<Record<WatchEventType, string>>;
}

interface Watcher {
  resource: KubeResource;
  namespace: string | undefined;
  filter: ObjectFilter;
  bookmarks: boolean;
  token: string | undefined;
  /** Cut off with 'hang': nothing is written until the token is restored (then the watch is dropped). */
  stalled: boolean;
  res: ServerResponse;
  socket: Socket;
}

export const DEFAULT_FAKE_TOKEN = 'fake-kube-token-4f1d2c';

export class FakeKubeApiServer {
  /** Every request received, in order (failed and refused ones included). */
  readonly requests: RequestRecord[] = [];
  /** The Events API: what was recorded, and a switch to forbid it (fake-kube-events.ts). */
  readonly events = new FakeEvents();
  /** The Lease API (fake-kube-leases.ts), on this server's resourceVersion counter. */
  readonly leases: FakeLeases = new FakeLeases(() => String(++this.rv));
  private readonly objects = new Map<string, KubeObject>();
  /** Each resource's keys in order, rebuilt after an object is added or removed (paged lists). */
  private readonly sortedKeys = new Map<KubeResource, string[]>();
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
  private readonly tokens = new Set<string>();
  private readonly cutOffs = new Map<string, Failure>();
  private readonly groups: FakeApiGroup[] = [];
  private version: VersionInfo = { major: '1', minor: '31', gitVersion: 'v1.31.0', platform: 'linux/amd64' };
  private uids = 0;
  private readonly closing = new AbortController();

  private readonly server: Server;
  private readonly options: FakeKubeApiOptions;
  private readonly clock: Clock;
  /** The bearer token the default kubeconfig carries. */
  readonly token: string;

  private constructor(server: Server, options: FakeKubeApiOptions) {
    this.server = server;
    this.options = options;
    this.token = options.token ?? DEFAULT_FAKE_TOKEN;
    this.tokens.add(this.token);
    this.clock = options.clock ?? systemClock;
    this.extend(this.events);
    this.extend(this.leases);
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

  /**
   * A kubeconfig (YAML) for this server with its CA and a bearer token: the server's own,
   * `user.token` (accept it first with `addToken`), or `user.tokenFile` (kubectl's field).
   */
  kubeconfig(namespace = 'default', user: KubeconfigUser = {}): string {
    const cluster = this.options.tls
      ? `certificate-authority-data: ${Buffer.from(this.options.tls.ca).toString('base64')}`
      : 'insecure-skip-tls-verify: true';
    const credential =
      user.tokenFile !== undefined
        ? `tokenFile: ${JSON.stringify(user.tokenFile)}`
        : `token: ${user.token ?? this.token}`;
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
      `    ${credential}`,
      'contexts:',
      '- name: fake',
      `  context: {cluster: fake, user: fake, namespace: ${namespace}}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  /** Serves another resource group (its paths are offered to it before the built-in resources). */
  extend(group: FakeApiGroup): void {
    this.groups.push(group);
  }

  // ---- objects ----

  /**
   * Creates or replaces an object (ADDED or MODIFIED); returns the stored copy. A pod
   * being deleted with a grace period of 0 whose finalizers are all gone is removed
   * instead, as any update of it would (DELETED).
   */
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
    if (previous && finalizedDuringUpdate(previous, stored)) return this.remove(resource, key, previous);
    this.store(resource, key, stored, previous);
    return structuredClone(stored);
  }

  get(resource: KubeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.objects.get(
      keyOf(resource, RESOURCES[resource].namespaced ? namespace : undefined, name),
    );
    return object && structuredClone(object);
  }

  /**
   * Deletes an object as a DELETE request with these options does (the default here is
   * a grace period of 0: the kubelet's final delete of a pod, or a force delete). Without
   * finalizers and without a grace period left it is removed (DELETED); otherwise it gets
   * `deletionTimestamp` and `deletionGracePeriodSeconds` and stays (MODIFIED) until the
   * finalizers are gone and a delete with grace 0 came. False if there was no such object.
   */
  delete(
    resource: KubeResource,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): boolean {
    const key = keyOf(resource, RESOURCES[resource].namespaced ? namespace : undefined, name);
    const current = this.objects.get(key);
    if (!current) return false;
    this.deleteObject(resource, key, current, options.gracePeriodSeconds ?? 0);
    return true;
  }

  /**
   * Replaces an object's `status` only, as the kubelet's and controllers' status updates
   * do: metadata (finalizers, annotations, a deletion under way) and spec stay as stored. MODIFIED.
   */
  setStatus(
    resource: KubeResource,
    namespace: string | undefined,
    name: string,
    status: unknown,
  ): KubeObject {
    const current = this.get(resource, namespace, name);
    if (!current) throw new Error(`fake kube api: no ${resource} ${namespace ?? ''}/${name}`);
    return this.set(resource, { ...current, status: structuredClone(status) });
  }

  /**
   * Sets a node's `Ready` condition as the node controller (`Unknown`, the kubelet
   * stopped posting status) or the kubelet (`True`/`False`) does: MODIFIED.
   */
  setNodeReady(name: string, status: 'True' | 'False' | 'Unknown'): KubeObject {
    const node = this.get('nodes', undefined, name);
    if (!node) throw new Error(`fake kube api: no node ${name}`);
    const nodeStatus = (node.status ?? {}) as { conditions?: Record<string, unknown>[] };
    const conditions = (nodeStatus.conditions ?? []).filter((c) => c.type !== 'Ready');
    const previous = (nodeStatus.conditions ?? []).find((c) => c.type === 'Ready');
    const now = new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const reasons = {
      True: ['KubeletReady', 'kubelet is posting ready status'],
      False: ['KubeletNotReady', 'container runtime network not ready'],
      Unknown: ['NodeStatusUnknown', 'Kubelet stopped posting node status.'],
    } as const;
    conditions.push({
      type: 'Ready',
      status,
      lastHeartbeatTime: status === 'Unknown' ? (previous?.lastHeartbeatTime ?? now) : now,
      lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
      reason: reasons[status][0],
      message: reasons[status][1],
    });
    return this.set('nodes', { ...node, status: { ...nodeStatus, conditions } });
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

  /** Accepts another bearer token (each process of a test can carry its own). */
  addToken(token: string): void {
    this.tokens.add(token);
  }

  /**
   * Stops accepting a token: 401 from now on, and its open watches end. (kube-apiserver
   * authenticates a watch once, when it starts: an expired token's watch runs on until
   * its timeout, 30 to 60 minutes, and the reconnect gets the 401. Ending it now is that
   * timeout come early.)
   */
  revokeToken(token: string): void {
    this.tokens.delete(token);
    for (const watcher of this.watchersOf(token)) {
      this.watchers.delete(watcher);
      watcher.res.end();
    }
  }

  /**
   * Cuts one client off (a leader partitioned from the API server while its standby
   * still reaches it): every request carrying `token` fails as `failure` says, and its
   * open watches are dropped ('drop'), go silent ('hang') or end (a status), until `restore`.
   */
  cutOff(token: string, failure: Failure): void {
    this.cutOffs.set(token, failure);
    for (const watcher of this.watchersOf(token)) {
      if (failure === 'hang') {
        watcher.stalled = true;
        continue;
      }
      this.watchers.delete(watcher);
      if (failure === 'drop') watcher.socket.destroy();
      else watcher.res.end();
    }
  }

  /**
   * Ends a cut-off. Watches that went silent are dropped: kube-apiserver closes a watcher
   * that stopped taking events rather than buffer for it without end.
   */
  restore(token: string): void {
    this.cutOffs.delete(token);
    for (const watcher of this.watchersOf(token)) {
      if (!watcher.stalled) continue;
      this.watchers.delete(watcher);
      watcher.socket.destroy();
    }
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that allows them. */
  bookmark(): void {
    for (const watcher of this.watchers) {
      if (!watcher.bookmarks || watcher.stalled) continue;
      const type = RESOURCES[watcher.resource];
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

  // ---- storage ----

  private store(
    resource: KubeResource,
    key: string,
    object: KubeObject,
    previous: KubeObject | undefined,
  ): void {
    object.metadata = { ...object.metadata, resourceVersion: String(++this.rv) };
    this.objects.set(key, object);
    if (!previous) this.sortedKeys.delete(resource);
    this.record({
      rv: this.rv,
      resource,
      type: previous ? 'MODIFIED' : 'ADDED',
      object,
      previous,
      lines: {},
    });
  }

  /** Removes an object; returns its last state with the deletion's resourceVersion. */
  private remove(resource: KubeResource, key: string, current: KubeObject): KubeObject {
    this.objects.delete(key);
    this.sortedKeys.delete(resource);
    const object = { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
    this.record({ rv: this.rv, resource, type: 'DELETED', object, previous: current, lines: {} });
    return structuredClone(object);
  }

  /**
   * A delete, as the registry's store does it (BeforeDelete, and the pod strategy's
   * CheckGracefulDelete): an unscheduled or finished pod has no grace period; a second
   * delete may only shorten it; finalizers keep the object until they are removed.
   */
  private deleteObject(
    resource: KubeResource,
    key: string,
    current: KubeObject,
    requested?: number,
  ): KubeObject {
    const metadata = current.metadata ?? {};
    const spec = (current.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    const phase = ((current.status ?? {}) as { phase?: string }).phase;
    let grace = 0;
    if (resource === 'pods' && spec.nodeName && phase !== 'Succeeded' && phase !== 'Failed') {
      grace = Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? 30);
    }
    const pending = metadata.deletionGracePeriodSeconds as number | undefined;
    if (pending !== undefined) grace = Math.min(grace, pending);
    const finalizers = (metadata.finalizers as string[] | undefined) ?? [];
    if (grace === 0 && finalizers.length === 0) return this.remove(resource, key, current);
    if (pending === grace) return structuredClone(current);
    const deletionTimestamp = new Date(this.clock.now() + grace * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    const next = {
      ...structuredClone(current),
      metadata: { ...structuredClone(metadata), deletionTimestamp, deletionGracePeriodSeconds: grace },
    };
    this.store(resource, key, next, current);
    return structuredClone(next);
  }

  // ---- serving ----

  private watchersOf(token: string): Watcher[] {
    return [...this.watchers].filter((watcher) => watcher.token === token);
  }

  private record(entry: HistoryEntry): void {
    this.history.push(entry);
    const limit = this.options.historyLimit ?? 1000;
    if (this.history.length > limit) {
      this.history.splice(0, this.history.length - limit);
      this.oldestRv = (this.history[0]?.rv ?? this.rv) - 1;
    }
    for (const watcher of this.watchers) {
      if (watcher.stalled) continue;
      const line = lineFor(watcher, entry);
      if (line) watcher.res.write(line);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const watch = query.watch === '1' || query.watch === 'true';
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const record: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query, watch, token };
    this.requests.push(record);

    const injected = this.failures.find((f) => f.left > 0 && requestMatches(f.match, record));
    if (injected) injected.left--;
    const failure = injected?.failure ?? (token === undefined ? undefined : this.cutOffs.get(token));
    if (failure !== undefined) {
      const reply = fail(req, failure);
      if (reply) json(res, reply.code, reply.body);
      return;
    }
    if (token === undefined || !this.tokens.has(token)) {
      const reply = kubeStatus(401, 'Unauthorized', 'Unauthorized');
      json(res, reply.code, reply.body);
      return;
    }
    if (record.method === 'GET') {
      const reply = this.answer(record, req, res, '');
      if (reply) json(res, reply.code, reply.body);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const reply =
        size > MAX_BODY_BYTES
          ? kubeStatus(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728')
          : this.answer(record, req, res, Buffer.concat(chunks).toString('utf8'));
      if (reply) json(res, reply.code, reply.body);
    });
  }

  /** The reply to send, or undefined when the request was answered otherwise (a watch, a slow list). */
  private answer(
    record: RequestRecord,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
  ): Reply | undefined {
    const { method, path: pathname, query, watch } = record;
    const request: FakeApiRequest = {
      method,
      path: pathname,
      query,
      body,
      contentType:
        String(req.headers['content-type'] ?? '')
          .split(';')[0]
          ?.trim() ?? '',
      token: record.token,
    };
    const context: FakeApiContext = {
      now: () => this.clock.now(),
      nextResourceVersion: () => String(++this.rv),
    };
    for (const group of this.groups) {
      const reply = group.serve(request, context);
      if (reply) return reply;
    }
    if (pathname === '/version' && method === 'GET') return { code: 200, body: this.version };

    const route = ROUTE.exec(pathname);
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
    const verb = verbOf(method, Boolean(name), watch);
    if (!verb) {
      return kubeStatus(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    if (this.forbidden.has(`${resource}/*`) || this.forbidden.has(`${resource}/${namespace}`)) {
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
      const key = keyOf(resource, namespace, name);
      const current = this.objects.get(key);
      if (!current)
        return kubeStatus(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
      if (verb === 'patch') return this.patch(resource, key, current, request);
      if (verb === 'delete') return this.deleteRequest(resource, key, current, request);
      return { code: 200, body: current };
    }

    let filter: ObjectFilter;
    try {
      const fields = parseFieldSelector(resource, query.fieldSelector ?? '');
      const labels = parseLabelSelector(query.labelSelector ?? '');
      filter = (object) => fields(object) && labels(object);
    } catch (error) {
      if (!(error instanceof SelectorError)) throw error;
      return kubeStatus(400, 'BadRequest', error.message);
    }
    if (watch) return this.watch(req, res, { resource, namespace, filter, token: record.token }, query);
    return this.list(res, resource, namespace, filter, type, query);
  }

  /**
   * PATCH, as handlers/patch.go does it: the patch applied to the stored object, then
   * the result written with the resourceVersion it carries as a precondition (a merge
   * patch naming an old `metadata.resourceVersion`, or a JSON Patch replacing it, gets
   * 409 Conflict; one without it applies to whatever is current). Name, namespace, uid,
   * creationTimestamp and a deletion under way cannot be patched; no finalizer may be
   * added to an object being deleted (422).
   */
  private patch(resource: KubeResource, key: string, current: KubeObject, request: FakeApiRequest): Reply {
    let patched: unknown;
    try {
      let patch: unknown;
      try {
        patch = JSON.parse(request.body);
      } catch (error) {
        throw new PatchError(400, `error decoding patch: ${(error as Error).message}`);
      }
      if (request.contentType === 'application/merge-patch+json') {
        if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
          throw new PatchError(400, 'Invalid JSON Patch');
        }
        patched = mergePatch(current, patch);
      } else if (request.contentType === 'application/json-patch+json') {
        patched = jsonPatch(current, patch);
      } else {
        return kubeStatus(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`,
        );
      }
    } catch (error) {
      if (!(error instanceof PatchError)) throw error;
      if (error.code === 400) return kubeStatus(400, 'BadRequest', error.message);
      return kubeStatus(422, 'Invalid', 'the server rejected our request due to an error in our request', {
        causes: [{ reason: 'UnexpectedServerResponse', message: error.message }],
      });
    }
    if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) {
      return kubeStatus(400, 'BadRequest', 'the patched object is not a JSON object');
    }
    const next = patched as KubeObject;
    const metadata = (current.metadata ?? {}) as Record<string, unknown>;
    const nextMetadata = (next.metadata ?? {}) as Record<string, unknown>;
    const name = String(metadata.name);
    const wanted = nextMetadata.resourceVersion;
    if (typeof wanted === 'string' && wanted !== '' && wanted !== metadata.resourceVersion) {
      return conflict(resource, name);
    }
    for (const field of [
      'name',
      'namespace',
      'uid',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
    ]) {
      if (metadata[field] === undefined) delete nextMetadata[field];
      else nextMetadata[field] = metadata[field];
    }
    if (metadata.deletionTimestamp !== undefined) {
      const before = new Set((metadata.finalizers as string[] | undefined) ?? []);
      const added = ((nextMetadata.finalizers as string[] | undefined) ?? []).filter((f) => !before.has(f));
      if (added.length > 0) {
        return kubeStatus(
          422,
          'Invalid',
          `${RESOURCES[resource].kind} "${name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
          { name, kind: resource, causes: [{ reason: 'FieldValueForbidden', field: 'metadata.finalizers' }] },
        );
      }
    }
    next.apiVersion = RESOURCES[resource].apiVersion;
    next.kind = RESOURCES[resource].kind;
    next.metadata = nextMetadata;
    // Emptying the finalizers of an object deleted with grace 0 removes it: the answer
    // (and the DELETED event) is its last stored state, as the store's delete returns it.
    if (finalizedDuringUpdate(current, next)) return { code: 200, body: this.remove(resource, key, current) };
    // A patch that changes nothing writes nothing: same resourceVersion, no event (etcd3's
    // GuaranteedUpdate skips an unchanged object).
    nextMetadata.resourceVersion = metadata.resourceVersion;
    if (sameJson(next, current)) return { code: 200, body: current };
    this.store(resource, key, next, current);
    return { code: 200, body: next };
  }

  private deleteRequest(
    resource: KubeResource,
    key: string,
    current: KubeObject,
    request: FakeApiRequest,
  ): Reply {
    let options: {
      gracePeriodSeconds?: unknown;
      preconditions?: { uid?: unknown; resourceVersion?: unknown };
    } = {};
    if (request.body.trim()) {
      try {
        options = JSON.parse(request.body);
      } catch {
        return kubeStatus(400, 'BadRequest', 'the body of the request was in an unknown format');
      }
    }
    const fromQuery = request.query.gracePeriodSeconds;
    const grace = fromQuery !== undefined ? Number(fromQuery) : options.gracePeriodSeconds;
    if (grace !== undefined && (typeof grace !== 'number' || !Number.isInteger(grace))) {
      return kubeStatus(400, 'BadRequest', `invalid gracePeriodSeconds: ${String(grace)}`);
    }
    const metadata = current.metadata ?? {};
    const name = String(metadata.name);
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid !== undefined && uid !== metadata.uid) {
      return conflict(
        resource,
        name,
        `Precondition failed: UID in precondition: ${String(uid)}, UID in object meta: ${metadata.uid}`,
      );
    }
    if (resourceVersion !== undefined && resourceVersion !== metadata.resourceVersion) {
      return conflict(
        resource,
        name,
        `Precondition failed: ResourceVersion in precondition: ${String(resourceVersion)}, ResourceVersion in object meta: ${metadata.resourceVersion}`,
      );
    }
    return { code: 200, body: this.deleteObject(resource, key, current, grace) };
  }

  /**
   * A LIST, paged with `limit`/`continue` as the API server pages it (items in key
   * order, the continue token holding the snapshot's resourceVersion and the last key;
   * a token older than the compacted history answers 410 Expired; `remainingItemCount`
   * only without selectors, as kube-apiserver gives it). With `listCostMsPerItem`, the
   * answer takes that long per item returned, as a consistent read of a big collection does.
   */
  private list(
    res: ServerResponse,
    resource: KubeResource,
    namespace: string | undefined,
    filter: ObjectFilter,
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
    const keys = this.keysOf(resource);
    const prefix = namespace === undefined ? `${resource}/` : `${resource}/${namespace}/`;
    const limit = Number(query.limit) > 0 ? Number(query.limit) : Number.POSITIVE_INFINITY;
    const selected = Boolean(query.labelSelector || query.fieldSelector);
    const page: KubeObject[] = [];
    let lastKey: string | undefined;
    let more = 0;
    for (let i = firstAfter(keys, after > prefix ? after : prefix); i < keys.length; i++) {
      const key = keys[i] as string;
      if (!key.startsWith(prefix)) break;
      const object = this.objects.get(key) as KubeObject;
      if (!filter(object)) continue;
      if (page.length < limit) {
        page.push(object);
        lastKey = key;
      } else {
        more++;
        if (selected) break; // the remaining count is not given with selectors: one more is enough
      }
    }
    const metadata: Record<string, unknown> = { resourceVersion: snapshot };
    if (more > 0 && lastKey !== undefined) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: snapshot, after: lastKey })).toString('base64url');
      if (!selected) metadata.remainingItemCount = more;
    }
    const reply: Reply = {
      code: 200,
      body: {
        apiVersion: type.apiVersion,
        kind: `${type.kind}List`,
        metadata,
        items: page.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
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

  private keysOf(resource: KubeResource): string[] {
    let keys = this.sortedKeys.get(resource);
    if (!keys) {
      keys = [...this.objects.keys()].filter((key) => key.startsWith(`${resource}/`)).sort();
      this.sortedKeys.set(resource, keys);
    }
    return keys;
  }

  private watch(
    req: IncomingMessage,
    res: ServerResponse,
    scope: Pick<Watcher, 'resource' | 'namespace' | 'filter' | 'token'>,
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
    const watcher: Watcher = {
      ...scope,
      bookmarks: query.allowWatchBookmarks === 'true',
      stalled: false,
      res,
      socket: req.socket,
    };
    if (fromRv === undefined) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      const prefix =
        scope.namespace === undefined ? `${scope.resource}/` : `${scope.resource}/${scope.namespace}/`;
      for (const [key, object] of this.objects) {
        if (key.startsWith(prefix) && scope.filter(object)) send(res, 'ADDED', object);
      }
    } else {
      for (const entry of this.history) {
        if (entry.rv <= fromRv) continue;
        const line = lineFor(watcher, entry);
        if (line) res.write(line);
      }
    }
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

/** Index of the first key greater than `after` in sorted `keys`. */
function firstAfter(keys: readonly string[], after: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((keys[mid] as string) <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The line a watcher gets for a change, as kube-apiserver's watch cache decides it
 * (staging/src/k8s.io/apiserver/pkg/storage/cacher, cacheWatcher.convertToWatchEvent):
 * the selector is tested on the new and the previous object; an object that starts
 * matching arrives as ADDED, one that still matches as MODIFIED, and one that stops
 * matching (or is deleted) as DELETED carrying its previous — last matching — state
 * with the event's resourceVersion. Neither matching: nothing.
 */
function lineFor(watcher: Watcher, entry: HistoryEntry): string | undefined {
  if (entry.resource !== watcher.resource) return undefined;
  if (watcher.namespace !== undefined && entry.object.metadata?.namespace !== watcher.namespace)
    return undefined;
  const now = entry.type !== 'DELETED' && watcher.filter(entry.object);
  const before = entry.previous !== undefined && watcher.filter(entry.previous);
  if (now) {
    const type = before ? 'MODIFIED' : 'ADDED';
    entry.lines[type] ??= `${JSON.stringify({ type, object: entry.object })}\n`;
    return entry.lines[type];
  }
  if (!before || !entry.previous) return undefined;
  const previous = entry.previous;
  entry.lines.DELETED ??= `${JSON.stringify({
    type: 'DELETED',
    object: { ...previous, metadata: { ...previous.metadata, resourceVersion: String(entry.rv) } },
  })}\n`;
  return entry.lines.DELETED;
}

/**
 * The registry store's shouldDeleteDuringUpdate: an update that leaves no finalizers
 * on an object already deleted with a grace period of 0 removes it.
 */
function finalizedDuringUpdate(current: KubeObject, next: KubeObject): boolean {
  const finalizers = (next.metadata?.finalizers as string[] | undefined) ?? [];
  return current.metadata?.deletionGracePeriodSeconds === 0 && finalizers.length === 0;
}

function verbOf(method: string, named: boolean, watch: boolean): string | undefined {
  if (method === 'GET') return named ? 'get' : watch ? 'watch' : 'list';
  if (method === 'PATCH' && named) return 'patch';
  if (method === 'DELETE' && named) return 'delete';
  return undefined;
}

function conflict(resource: KubeResource, name: string, detail?: string): Reply {
  return kubeStatus(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${resource} "${name}": ${detail ?? 'the object has been modified; please apply your changes to the latest version and try again'}`,
    { name, kind: resource },
  );
}

/** Answers a request as `failure` says; undefined when there is no answer to send (drop, hang). */
function fail(req: IncomingMessage, failure: Failure): Reply | undefined {
  if (failure === 'drop') {
    req.socket.destroy();
    return undefined;
  }
  if (failure === 'hang') return undefined;
  const { status, reason, message } = failure;
  return kubeStatus(status, reason ?? reasonFor(status), message ?? `injected failure ${status}`);
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
