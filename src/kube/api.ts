// A thin typed client for the few Kubernetes reads the agent and the webhook make,
// on client-node's KubeConfig (kubeconfig files, in-cluster service account, token
// refresh, exec/OIDC plugins) with one undici dispatcher shared by every call.
//
// Why not client-node's request path: `applySecurityAuthentication` builds a new undici
// Agent (a new TLS handshake, idle sockets left behind) on every call whenever a CA is
// configured, and its `Watch` cannot be cancelled before the response headers arrive and
// uses one 30 s timer for both connecting and idling (shorter than the API server's
// one-minute bookmark period). We take the headers and TLS material from
// `applyToHTTPSOptions` and the dispatcher mapping from `createDispatcherOptions`, and
// keep the dispatcher until that material changes (a rotated CA or client certificate).
//
// Deadlines here are wall-clock bounds on I/O (like AbortSignal.timeout); the policy
// around them (backoff, retries) runs on the injected Clock in pod-watch.ts/read-retry.ts.
import { existsSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { Agent, type Dispatcher, ProxyAgent } from 'undici';
import { type Clock, systemClock } from '../clock.ts';
import { kubeconfigFiles } from '../config/kubeconfig.ts';
import { Problem } from '../config/settings.ts';
import { isRecord } from '../json.ts';
import { Limiter } from '../limiter.ts';
import { kubeconfigTokenFile, TokenFile } from './token-file.ts';
import type { Job, Lease, Node, Pod, Status, VersionInfo, WatchEvent } from './types.ts';

export type KubeErrorCode =
  | 'KUBE_HTTP' // the API answered with a non-success status
  | 'KUBE_TIMEOUT' // no complete answer within the call's deadline
  | 'KUBE_NETWORK' // connection refused, reset, TLS failure, stream cut
  | 'KUBE_ABORTED' // the caller's signal fired
  | 'KUBE_BAD_RESPONSE' // a 200 whose body is not the expected JSON
  | 'KUBE_CONFIG'; // no usable kubeconfig, or credentials that cannot be applied

/** Every failure of this module. Messages carry the method and URL path, never a credential. */
export class KubeError extends Error {
  override readonly name = 'KubeError';
  readonly code: KubeErrorCode;
  /** The HTTP status, for KUBE_HTTP. */
  readonly status: number | undefined;
  /** The Status body's `reason` (`Forbidden`, `NotFound`, `Expired`…), when the API sent one. */
  readonly reason: string | undefined;
  /** Path and query of the request ('' for configuration errors). */
  readonly path: string;

  constructor(options: {
    code: KubeErrorCode;
    message: string;
    path: string;
    status?: number | undefined;
    reason?: string | undefined;
    cause?: unknown;
  }) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.status = options.status;
    this.reason = options.reason;
    this.path = options.path;
  }
}

/** A refusal is final (contract rule 1): retrying a 403 or a 404 will not change the answer. */
export function isRefusal(error: unknown): error is KubeError {
  return error instanceof KubeError && (error.status === 403 || error.status === 404);
}

/**
 * The API server's "your resourceVersion is too old": code 410, or only the reason
 * (`Expired`, `Gone`) — a Status without the code exists in the wild, and resuming
 * from the same version would then fail forever (rule 21).
 */
export function isExpired(status: { code?: number | undefined; reason?: string | undefined }): boolean {
  return status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone';
}

/** The bounds of one call. */
export interface KubeCall {
  /** Bound on the whole call, body included. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface WatchOptions<T> {
  signal: AbortSignal;
  /** Bound on getting the response headers. */
  connectTimeoutMs: number;
  /** Longest silence on an open stream before it is treated as dead and ended. */
  idleTimeoutMs: number;
  onEvent(event: WatchEvent<T>): void;
  /** A line that is not a JSON watch event (counted by the caller, never silently dropped). */
  onBadLine?(line: string): void;
}

/**
 * How a watch stream ended without an error: closed by the server, silent for too
 * long, or cut by us at a line longer than the cap (the event in it is lost: re-list).
 */
export type WatchEnd = 'closed' | 'idle' | 'oversized';

/** Rule 21: the longest watch line read; the API server's own objects stay far below it. */
const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

export interface LoadOptions {
  /** A KUBECONFIG value: files separated by `path.delimiter`, merged as kubectl does (config/kubeconfig.ts). */
  kubeconfig?: string | undefined;
  /** Prefix of the service-account files for in-cluster config (tests). */
  inClusterRoot?: string;
  /** Ages the token read from a token file (rule T1). */
  clock?: Clock;
  /**
   * One-off calls (not watches, not lists) in flight at once; the rest wait their turn,
   * and a call's deadline starts when it gets one. Unset: no limit (the agent makes a
   * handful). The fleet sets it: a first list of a thousand pods must not open a thousand
   * TLS connections for their Job reads.
   */
  maxConcurrentCalls?: number;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeApi {
  private readonly config: KubeConfig;
  private dispatcher: Dispatcher | undefined;
  private dispatcherKey = '';
  /** Rule T1: the bearer token comes from this file, followed as it rotates (token-file.ts). */
  private readonly tokenFile: TokenFile | undefined;
  private readonly calls: Limiter | undefined;

  constructor(
    config: KubeConfig,
    credentials: {
      tokenFile?: string | undefined;
      clock?: Clock;
      maxConcurrentCalls?: number | undefined;
    } = {},
  ) {
    this.config = config;
    this.calls = credentials.maxConcurrentCalls ? new Limiter(credentials.maxConcurrentCalls) : undefined;
    this.tokenFile =
      credentials.tokenFile === undefined
        ? undefined
        : new TokenFile(credentials.tokenFile, credentials.clock ?? systemClock);
  }

  /** The kubeconfig files if given, else in-cluster when the service-account token exists, else ~/.kube/config. */
  static load(options: LoadOptions = {}): KubeApi {
    let config = new KubeConfig();
    const files = kubeconfigFiles(options.kubeconfig ?? '');
    if (files instanceof Problem) throw configError(`KUBECONFIG: ${files.message}`);
    const root = options.inClusterRoot ?? '';
    const home = path.join(homedir(), '.kube', 'config');
    let tokenFile: string | undefined;
    if (files.length > 0) {
      config = mergeFiles(files);
      tokenFile = kubeconfigTokenFile(files, config.getCurrentUser()?.name ?? '');
    } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(root + SERVICE_ACCOUNT_TOKEN)) {
      config.loadFromCluster(root);
      tokenFile = root + SERVICE_ACCOUNT_TOKEN;
    } else if (existsSync(home)) {
      config = mergeFiles([home]);
      tokenFile = kubeconfigTokenFile([home], config.getCurrentUser()?.name ?? '');
    } else {
      throw configError('no Kubernetes configuration: not in a cluster and no ~/.kube/config');
    }
    if (!config.getCurrentCluster()) throw configError('kubeconfig has no current context or cluster');
    return new KubeApi(config, {
      tokenFile,
      ...(options.clock && { clock: options.clock }),
      maxConcurrentCalls: options.maxConcurrentCalls,
    });
  }

  /** The API server's base URL. */
  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '';
  }

  getPod(namespace: string, name: string, call: KubeCall): Promise<Pod> {
    return this.get<Pod>(`/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, call);
  }

  getJob(namespace: string, name: string, call: KubeCall): Promise<Job> {
    return this.get<Job>(`/apis/batch/v1/namespaces/${enc(namespace)}/jobs/${enc(name)}`, call);
  }

  getNode(name: string, call: KubeCall): Promise<Node> {
    return this.get<Node>(`/api/v1/nodes/${enc(name)}`, call);
  }

  getVersion(call: KubeCall): Promise<VersionInfo> {
    return this.get<VersionInfo>('/version', call);
  }

  /** GET of one object (or any JSON document) by its API path. */
  async get<T>(apiPath: string, call: KubeCall): Promise<T> {
    return this.request(apiPath, call, (body, where) => parseJson<T>(body, where));
  }

  /**
   * A list by API path, e.g. `/api/v1/nodes`, with its resourceVersion. Never waits for a
   * turn under `maxConcurrentCalls`: a list is a list-watch's (re)start, one at a time per
   * collection, and must not queue behind the Job reads and marks its own pods cause.
   */
  async list<T>(
    apiPath: string,
    query: Record<string, string>,
    call: KubeCall,
  ): Promise<{ items: T[]; resourceVersion: string; continue?: string }> {
    const where = withQuery(apiPath, query);
    return this.request(
      where,
      call,
      (body) => {
        const list = parseJson<{
          items?: T[] | null;
          metadata?: { resourceVersion?: string; continue?: string };
        }>(body, where);
        const resourceVersion = list.metadata?.resourceVersion;
        if (typeof resourceVersion !== 'string' || !Array.isArray(list.items ?? [])) {
          throw new KubeError({
            code: 'KUBE_BAD_RESPONSE',
            message: `GET ${where}: not a list`,
            path: where,
          });
        }
        // A paged list (`limit`) names where the next page starts; empty or absent on the last.
        const next = list.metadata?.continue;
        return { items: list.items ?? [], resourceVersion, ...(next ? { continue: next } : {}) };
      },
      undefined,
      false,
    );
  }

  /**
   * One watch stream (`watch=true` is added): resolves when it ends without an error,
   * rejects with a KubeError otherwise. Never reconnects: pod-watch.ts decides that.
   */
  async watch<T>(
    apiPath: string,
    query: Record<string, string>,
    options: WatchOptions<T>,
  ): Promise<WatchEnd> {
    const where = withQuery(apiPath, { ...query, watch: 'true' });
    const abort = new AbortController();
    const signal = AbortSignal.any([options.signal, abort.signal]);
    let phase: 'connect' | 'stream' = 'connect';
    let expired = false;
    let timer = setTimeout(() => {
      expired = true;
      abort.abort();
    }, options.connectTimeoutMs);
    try {
      const response = await this.send(where, signal, true);
      if (response.statusCode !== 200) {
        throw httpError(where, response.statusCode, await response.body.text());
      }
      phase = 'stream';
      clearTimeout(timer);
      timer = setTimeout(() => {
        expired = true;
        abort.abort();
      }, options.idleTimeoutMs);
      const lines = new LineSplitter(MAX_WATCH_LINE_BYTES);
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        timer.refresh();
        for (const line of lines.push(chunk)) deliverLine(line, options);
        // Rule 21: a line this long is no watch event; stop reading instead of buffering it.
        if (lines.overflowed) return 'oversized';
      }
      const last = lines.end();
      if (last.trim()) deliverLine(last, options);
      return 'closed';
    } catch (error) {
      if (expired && phase === 'stream' && !options.signal.aborted) return 'idle';
      throw toKubeError(error, where, {
        aborted: options.signal.aborted,
        expired,
        timeoutMs: options.connectTimeoutMs,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- writes: Events (contract: Events on the task pod), Leases ----

  /** POST of a new object (JSON) to a collection path; resolves with the object the server stored. */
  async create<T>(apiPath: string, object: unknown, call: KubeCall): Promise<T> {
    return this.request(apiPath, call, (body, where) => parseJson<T>(body, where), {
      method: 'POST',
      body: JSON.stringify(object),
    });
  }

  /**
   * PUT of a whole object to its path: an update guarded by the `metadata.resourceVersion`
   * it carries (a stale one is a KubeError with status 409 and reason `Conflict`).
   */
  async replace<T>(apiPath: string, object: unknown, call: KubeCall): Promise<T> {
    return this.request(apiPath, call, (body, where) => parseJson<T>(body, where), {
      method: 'PUT',
      body: JSON.stringify(object),
    });
  }

  /**
   * A JSON merge patch (RFC 7386) of one object: `null` deletes a key, a list is replaced
   * whole (guard it with `metadata.resourceVersion` in the patch: a stale one is a 409).
   */
  async mergePatch<T>(apiPath: string, patch: unknown, call: KubeCall): Promise<T> {
    return this.request(apiPath, call, (body, where) => parseJson<T>(body, where), {
      method: 'PATCH',
      body: JSON.stringify(patch),
      contentType: 'application/merge-patch+json',
    });
  }

  // ---- Leases (the cluster fleet's leader election, fleet/lease-elector.ts) ----

  getLease(namespace: string, name: string, call: KubeCall): Promise<Lease> {
    return this.get<Lease>(leasePath(namespace, name), call);
  }

  /** 409 `AlreadyExists` when another process created it first. */
  createLease(lease: Lease, call: KubeCall): Promise<Lease> {
    return this.create<Lease>(leasePath(lease.metadata?.namespace ?? '', ''), lease, call);
  }

  /** 409 `Conflict` when the lease changed since its `metadata.resourceVersion` was read. */
  replaceLease(lease: Lease, call: KubeCall): Promise<Lease> {
    return this.replace<Lease>(
      leasePath(lease.metadata?.namespace ?? '', lease.metadata?.name ?? ''),
      lease,
      call,
    );
  }

  /** Closes every connection, open watches included. */
  async close(): Promise<void> {
    const dispatcher = this.dispatcher;
    this.dispatcher = undefined;
    this.dispatcherKey = '';
    await dispatcher?.destroy();
  }

  private async request<T>(
    where: string,
    call: KubeCall,
    parse: (body: string, where: string) => T,
    /** A JSON body to write (POST to create, PUT to replace); a GET without. */
    write?: Write,
    /** False: not under `maxConcurrentCalls` (a list, see `list`). */
    limited = true,
  ): Promise<T> {
    const method = write?.method ?? 'GET';
    let expired = false;
    // The deadline bounds the exchange, not the wait for a turn: a call queued behind
    // sixteen others would otherwise time out before it started, or be cut off mid-answer
    // (which closes its connection; the retry then opens another). The caller's signal
    // still ends the wait at once.
    const exchange = async () => {
      const deadline = new AbortController();
      const signal = call.signal ? AbortSignal.any([call.signal, deadline.signal]) : deadline.signal;
      const timer = setTimeout(() => {
        expired = true;
        deadline.abort();
      }, call.timeoutMs);
      try {
        const answer = await this.send(where, signal, false, write);
        return { response: answer, body: await answer.body.text() };
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      const queue = limited ? this.calls : undefined;
      const { response, body } = await (queue ? queue.run(exchange, call.signal) : exchange());
      const created = write !== undefined && response.statusCode === 201;
      if (response.statusCode !== 200 && !created) throw httpError(where, response.statusCode, body, method);
      return parse(body, where);
    } catch (error) {
      throw toKubeError(
        error,
        where,
        { aborted: call.signal?.aborted ?? false, expired, timeoutMs: call.timeoutMs },
        method,
      );
    }
  }

  /** One GET (or, with a body, a write) on the shared dispatcher, with the kubeconfig's headers. */
  private async send(
    where: string,
    signal: AbortSignal,
    streaming: boolean,
    write?: Write,
  ): Promise<Dispatcher.ResponseData> {
    const { response, token } = await this.sendOnce(where, signal, streaming, write);
    // Rule T1: a 401 with a token file means the token rotated under us (or ours expired):
    // read the file at once and, when it holds another token, make the call once more.
    if (response.statusCode !== 401 || token === undefined || !this.tokenFile) return response;
    let rotated: boolean;
    try {
      rotated = await this.tokenFile.rotated(token);
    } catch (error) {
      throw tokenFileError(this.tokenFile, where, error);
    }
    if (!rotated) return response;
    await response.body.dump();
    return (await this.sendOnce(where, signal, streaming, write)).response;
  }

  private async sendOnce(
    where: string,
    signal: AbortSignal,
    streaming: boolean,
    write?: Write,
  ): Promise<{ response: Dispatcher.ResponseData; token: string | undefined }> {
    const { dispatcher, origin, headers, prefix, token } = await this.prepare(where);
    const response = await dispatcher.request({
      origin,
      path: prefix + where,
      ...(write === undefined
        ? { method: 'GET' as const, headers }
        : {
            method: write.method,
            headers: { ...headers, 'content-type': write.contentType ?? 'application/json' },
            body: write.body,
          }),
      signal,
      // A watch's own timers bound connecting and silence; undici's 300 s ones would only interfere.
      ...(streaming ? { headersTimeout: 0, bodyTimeout: 0 } : {}),
    });
    return { response, token };
  }

  /** Headers and TLS material as the kubeconfig gives them now; the dispatcher reused while they hold. */
  private async prepare(where: string): Promise<{
    dispatcher: Dispatcher;
    origin: string;
    prefix: string;
    headers: Record<string, string>;
    /** The token read from the token file, when there is one. */
    token: string | undefined;
  }> {
    const cluster = this.config.getCurrentCluster();
    const options: RequestOptions = {};
    let dispatcherOptions: ReturnType<KubeConfig['createDispatcherOptions']>;
    try {
      // Re-reads a rotated token file or CA file, runs exec/OIDC plugins, refuses http:// without skip-verify.
      await this.config.applyToHTTPSOptions(options);
      const tls = Object.fromEntries(
        Object.entries({
          ca: options.ca,
          cert: options.cert,
          key: options.key,
          rejectUnauthorized: options.rejectUnauthorized,
          servername: options.servername,
        }).filter(([, value]) => value !== undefined),
      );
      dispatcherOptions = this.config.createDispatcherOptions(cluster, tls);
    } catch (error) {
      // The underlying message may quote a file path or a plugin's output, not the kubeconfig text.
      throw configError(
        `GET ${where}: cannot apply the kubeconfig credentials: ${(error as Error).message}`,
        where,
      );
    }
    const key = JSON.stringify(dispatcherOptions, function (this: Record<string, unknown>, field, value) {
      const raw = this[field];
      return Buffer.isBuffer(raw) ? raw.toString('base64') : value;
    });
    if (!this.dispatcher || key !== this.dispatcherKey) {
      const previous = this.dispatcher;
      this.dispatcher = createDispatcher(dispatcherOptions, where);
      this.dispatcherKey = key;
      // Requests still running on the old one (an open watch) finish there.
      previous?.close().catch(() => {});
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[name] = String(value);
    }
    if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    let token: string | undefined;
    if (this.tokenFile) {
      try {
        token = await this.tokenFile.current();
      } catch (error) {
        throw tokenFileError(this.tokenFile, where, error);
      }
      for (const name of Object.keys(headers))
        if (name.toLowerCase() === 'authorization') delete headers[name];
      headers.authorization = `Bearer ${token}`;
    }
    const server = new URL(cluster?.server ?? '');
    return {
      dispatcher: this.dispatcher,
      origin: server.origin,
      prefix: server.pathname.replace(/\/$/, ''),
      headers,
      token,
    };
  }
}

/**
 * kubectl's merge: the first file to set a cluster, user or context name wins, and so
 * does the first current-context. (client-node's own merge lets later files win and
 * fails on a name given twice.) Relative paths stay relative to their own file.
 */
function mergeFiles(files: readonly string[]): KubeConfig {
  const clusters = new Map<string, KubeConfig['clusters'][number]>();
  const users = new Map<string, KubeConfig['users'][number]>();
  const contexts = new Map<string, KubeConfig['contexts'][number]>();
  let currentContext = '';
  for (const file of files) {
    const one = new KubeConfig();
    try {
      one.loadFromFile(file);
    } catch (error) {
      // A YAML error quotes the file around the fault, which may be a token: name the file only.
      const code = (error as NodeJS.ErrnoException).code;
      throw configError(`cannot load kubeconfig ${file}: ${code ?? 'not a valid kubeconfig'}`);
    }
    for (const cluster of one.clusters) if (!clusters.has(cluster.name)) clusters.set(cluster.name, cluster);
    for (const user of one.users) if (!users.has(user.name)) users.set(user.name, user);
    for (const context of one.contexts) if (!contexts.has(context.name)) contexts.set(context.name, context);
    currentContext ||= one.currentContext ?? '';
  }
  const merged = new KubeConfig();
  merged.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  });
  return merged;
}

// client-node's TLS option types allow explicit undefined where undici's do not;
// the values are the same node:tls options.
type TlsConnect = Exclude<Agent.Options['connect'], ((...args: never[]) => unknown) | undefined>;

function createDispatcher(
  options: ReturnType<KubeConfig['createDispatcherOptions']>,
  where: string,
): Dispatcher {
  switch (options.type) {
    case 'agent':
      return new Agent({ connect: options.connect as TlsConnect });
    case 'proxy':
      return new ProxyAgent({
        uri: options.uri,
        requestTls: options.requestTls as NonNullable<ProxyAgent.Options['requestTls']>,
        connect: options.connect as TlsConnect,
      });
    case 'none':
      return new Agent();
    case 'socks':
      throw configError(`GET ${where}: SOCKS proxies in the kubeconfig are not supported`, where);
  }
}

/** Newline-delimited text from byte chunks, holding at most `maxBytes` of an unfinished line. */
class LineSplitter {
  private readonly maxBytes: number;
  private parts: Buffer[] = [];
  private size = 0;
  /** Set once the unfinished line passed `maxBytes`; nothing more is taken. */
  overflowed = false;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The lines completed by `chunk` (UTF-8 decoded, without the newline). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end >= 0; end = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, end);
      if (this.size + piece.length > this.maxBytes) {
        this.overflowed = true;
        return lines;
      }
      lines.push(Buffer.concat([...this.parts, piece]).toString('utf8'));
      this.parts = [];
      this.size = 0;
      start = end + 1;
    }
    const rest = chunk.subarray(start);
    if (this.size + rest.length > this.maxBytes) {
      this.overflowed = true;
    } else if (rest.length > 0) {
      this.parts.push(rest);
      this.size += rest.length;
    }
    return lines;
  }

  /** What is left after the stream ended. */
  end(): string {
    const rest = Buffer.concat(this.parts).toString('utf8');
    this.parts = [];
    this.size = 0;
    return rest;
  }
}

function deliverLine<T>(line: string, options: WatchOptions<T>): void {
  if (!line.trim()) return;
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    options.onBadLine?.(line);
    return;
  }
  const { type, object } = (event ?? {}) as { type?: unknown; object?: unknown };
  if (
    typeof type !== 'string' ||
    !['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'].includes(type) ||
    !isRecord(object)
  ) {
    options.onBadLine?.(line);
    return;
  }
  options.onEvent({ type, object } as WatchEvent<T>);
}

function httpError(where: string, status: number, body: string, method = 'GET'): KubeError {
  let reason: string | undefined;
  let detail = '';
  try {
    const parsed = JSON.parse(body) as Partial<Status>;
    if (parsed.kind === 'Status') {
      reason = parsed.reason;
      detail = parsed.message ? `: ${parsed.message}` : '';
    }
  } catch {
    // Not a Status (a proxy's HTML page): the status code says enough.
  }
  return new KubeError({
    code: 'KUBE_HTTP',
    message: `${method} ${where}: ${status}${reason ? ` ${reason}` : ''}${detail}`,
    path: where,
    status,
    reason,
  });
}

function toKubeError(
  error: unknown,
  where: string,
  state: { aborted: boolean; expired: boolean; timeoutMs: number },
  method = 'GET',
): KubeError {
  if (error instanceof KubeError) return error;
  if (state.aborted)
    return new KubeError({ code: 'KUBE_ABORTED', message: `${method} ${where}: cancelled`, path: where });
  if (state.expired) {
    return new KubeError({
      code: 'KUBE_TIMEOUT',
      message: `${method} ${where}: no answer within ${state.timeoutMs} ms`,
      path: where,
    });
  }
  const err = error as { code?: string; message?: string; cause?: { code?: string } };
  const what = err.cause?.code ?? err.code ?? err.message ?? String(error);
  return new KubeError({
    code: 'KUBE_NETWORK',
    message: `${method} ${where}: ${what}`,
    path: where,
    cause: error,
  });
}

function parseJson<T>(body: string, where: string): T {
  try {
    const value: unknown = JSON.parse(body);
    if (isRecord(value)) return value as T;
  } catch {
    // reported below
  }
  throw new KubeError({
    code: 'KUBE_BAD_RESPONSE',
    message: `GET ${where}: the answer is not a JSON object`,
    path: where,
  });
}

function configError(message: string, where = ''): KubeError {
  return new KubeError({ code: 'KUBE_CONFIG', message, path: where });
}

function tokenFileError(file: TokenFile, where: string, error: unknown): KubeError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
  return configError(`${where}: cannot read the token file ${file.path}: ${code}`, where);
}

/** A write's method and JSON body. */
interface Write {
  method: 'POST' | 'PUT' | 'PATCH';
  body: string;
  /** Default `application/json`; a merge patch says `application/merge-patch+json`. */
  contentType?: string;
}

/** The Lease collection of a namespace, or one Lease in it. */
function leasePath(namespace: string, name: string): string {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${enc(namespace)}/leases`;
  return name ? `${collection}/${enc(name)}` : collection;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function withQuery(apiPath: string, query: Record<string, string>): string {
  const search = new URLSearchParams(query).toString();
  return search ? `${apiPath}?${search}` : apiPath;
}
