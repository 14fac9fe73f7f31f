// The five Task Runs operations over one undici connection pool. One call is one
// HTTP attempt, bounded by `timeoutMs`; failures become a TesError that says
// whether the contract retries it. Retrying itself is the caller's business.
// This module is on the agent's start-up path: no swagger JSON, no validator.
import { getCACertificates } from 'node:tls';
import { Agent } from 'undici';
import { type Clock, systemClock } from '../clock.ts';
import { VERSION } from '../cli/exit.ts';
import { isRecord } from '../json.ts';
import type { Secrets } from '../secrets.ts';
import { parseRetryAfter, TesError, type TesErrorInit } from './errors.ts';
import type {
  CreateTaskRunRequest,
  HeartbeatTaskRunRequest,
  ListTaskRunsQuery,
  TaskRun,
  TaskRunHeartbeat,
  TaskRunSummary,
  TaskRunSummaryPagedItems,
} from './types.gen.ts';

export interface CallOptions {
  token?: string;
  signal?: AbortSignal;
}

export interface TesClientOptions {
  baseUrl: URL | string;
  /** Limit for one HTTP attempt, from dialling to the last byte of the body. */
  timeoutMs: number;
  /** Extra PEM bundle trusted in addition to the system CAs (none: undefined). */
  ca?: string | undefined;
  clock?: Clock;
  /** Scrubs the TES's own words (error messages, raw bodies) before they enter a TesError. */
  secrets?: Secrets;
}

type Method = 'GET' | 'POST' | 'PUT';

interface Call {
  operation: string;
  method: Method;
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  /** The contract lets this operation read an empty or non-JSON 2xx body as an empty model. */
  emptyModelAllowed?: boolean;
}

/** Longest piece of a non-ErrorResponse error body kept as `errorMessage`. */
const MAX_RAW_ERROR = 200;
/** Rule 21: an answer body is read up to this size; undici drops the connection beyond it. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

export class TesClient {
  private readonly origin: string;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly ca: string | undefined;
  private readonly secrets: Secrets | undefined;
  private agent: Agent;

  constructor(options: TesClientOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new TypeError(`TesClient: baseUrl must be http(s), got ${base.protocol}`);
    if (!(options.timeoutMs > 0)) throw new TypeError('TesClient: timeoutMs must be greater than 0');
    this.origin = base.origin;
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs;
    this.clock = options.clock ?? systemClock;
    this.ca = options.ca;
    this.secrets = options.secrets;
    this.agent = this.newAgent();
  }

  createTaskRun(body: CreateTaskRunRequest | undefined, options?: CallOptions): Promise<TaskRun> {
    return this.call({ operation: 'createTaskRun', method: 'POST', path: '/v1/tasks/runs', body }, options);
  }

  getTaskRun(runId: string, options?: CallOptions): Promise<TaskRun> {
    return this.call({ operation: 'getTaskRun', method: 'GET', path: runPath(runId, '') }, options);
  }

  listTaskRuns(query: ListTaskRunsQuery, options?: CallOptions): Promise<TaskRunSummaryPagedItems> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    return this.call(
      { operation: 'listTaskRuns', method: 'GET', path: '/v1/tasks/runs', query: params },
      options,
    );
  }

  abortTaskRun(runId: string, options?: CallOptions): Promise<TaskRunSummary> {
    return this.call({ operation: 'abortTaskRun', method: 'PUT', path: runPath(runId, ':abort') }, options);
  }

  heartbeatTaskRun(
    runId: string,
    body: HeartbeatTaskRunRequest,
    options?: CallOptions,
  ): Promise<TaskRunHeartbeat> {
    return this.call(
      {
        operation: 'heartbeatTaskRun',
        method: 'POST',
        path: runPath(runId, ':heartbeat'),
        body,
        // A 200 means the heartbeat was taken; a missing body only means no new jwt.
        emptyModelAllowed: true,
      },
      options,
    );
  }

  /**
   * Discards every pooled connection; the next call dials fresh ones (contract policy
   * rule 9). `drain` lets requests still running on the old connections finish there
   * (the fleet: other runs' attempts must not be cut off); by default they are destroyed.
   */
  async resetConnections(mode: 'destroy' | 'drain' = 'destroy'): Promise<void> {
    const old = this.agent;
    this.agent = this.newAgent();
    await (mode === 'drain' ? old.close() : old.destroy());
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private newAgent(): Agent {
    return new Agent({
      allowH2: false,
      maxResponseSize: MAX_ANSWER_BYTES,
      // Our own signal bounds each call; undici's coarse 300 s timers stay as a backstop.
      connect: this.ca === undefined ? {} : { ca: [...getCACertificates('default'), this.ca] },
    });
  }

  private async call<T>(call: Call, options: CallOptions = {}): Promise<T> {
    const path = `${this.basePath}${call.path}${call.query?.size ? `?${call.query}` : ''}`;
    const url = `${this.origin}${path}`;
    const fail = (init: Omit<TesErrorInit, 'operation' | 'method' | 'url'>) =>
      new TesError({ ...init, operation: call.operation, method: call.method, url });

    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': `tes-heartbeat/${VERSION}`,
    };
    if (options.token) headers.authorization = `Bearer ${options.token}`;

    const timeout = new AbortController();
    const stopTimer = new AbortController();
    this.clock.sleep(this.timeoutMs, stopTimer.signal).then(
      () => timeout.abort(),
      () => {},
    );
    const signal = options.signal ? AbortSignal.any([timeout.signal, options.signal]) : timeout.signal;
    const scrub = (text: string) => this.secrets?.scrub(text) ?? text;
    let status: number | undefined;

    try {
      const response = await this.agent.request({
        origin: this.origin,
        path,
        method: call.method,
        headers,
        body: call.body === undefined ? null : JSON.stringify(call.body),
        signal,
      });
      status = response.statusCode;
      const text = await response.body.text();
      const retryAfterMs = parseRetryAfter(header(response.headers['retry-after']), this.clock.now());
      if (status >= 200 && status < 300) {
        if (text.trim() === '') {
          if (call.emptyModelAllowed) return {} as T;
          throw fail({ code: 'TES_BAD_RESPONSE', status, detail: 'empty response body' });
        }
        const model = parseObject(text);
        if (model !== undefined) return model as T;
        if (!looksLikeJson(text)) {
          // Rule 20: a web UI answering 200 to anything is not a TES that heard the heartbeat.
          const type = mediaType(header(response.headers['content-type']));
          throw fail({
            code: 'TES_NOT_A_TES',
            status,
            detail: `the answer is not JSON (${type}): TES_URL does not point at a TES API`,
            logOnce: `TES_NOT_A_TES ${status} ${type}`,
          });
        }
        // A heartbeat's 200 means it was taken; a body without an object only means no new jwt.
        if (call.emptyModelAllowed) return {} as T;
        throw fail({ code: 'TES_BAD_RESPONSE', status, detail: 'response body is not a JSON object' });
      }
      const problem = parseObject(text);
      const errorResponse =
        typeof problem?.code === 'string' || typeof problem?.message === 'string' ? problem : undefined;
      throw fail({
        code: 'TES_HTTP_ERROR',
        status,
        errorCode: typeof errorResponse?.code === 'string' ? scrub(errorResponse.code) : undefined,
        // The TES's words may echo what it was sent (rule 11): scrubbed before anything keeps them.
        errorMessage: errorResponse
          ? typeof errorResponse.message === 'string'
            ? scrub(errorResponse.message)
            : undefined
          : rawSnippet(scrub(text)),
        retryAfterMs,
      });
    } catch (error) {
      if (error instanceof TesError) throw error;
      if (timeout.signal.aborted)
        throw fail({ code: 'TES_TIMEOUT', detail: `no complete answer within ${this.timeoutMs} ms` });
      if (options.signal?.aborted) throw options.signal.reason;
      const code = (error as { code?: unknown }).code;
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE')
        throw fail({
          code: 'TES_RESPONSE_TOO_LARGE',
          status,
          detail: `answer body over ${MAX_ANSWER_BYTES} bytes; connection discarded`,
        });
      // undici refuses to send what HTTP can't carry (a header value with a line break):
      // no attempt reached the network, and none ever will.
      if (code === 'UND_ERR_INVALID_ARG')
        throw fail({ code: 'TES_INVALID_REQUEST', detail: networkDetail(error), cause: error });
      throw fail({ code: 'TES_NETWORK_ERROR', detail: networkDetail(error), cause: error });
    } finally {
      stopTimer.abort();
    }
  }
}

/** `/v1/tasks/runs/{runId}` plus the operation's suffix; the id fully percent-encoded. */
function runPath(runId: string, suffix: '' | ':abort' | ':heartbeat'): string {
  return `/v1/tasks/runs/${encodeURIComponent(runId)}${suffix}`;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (isRecord(value)) return value;
  } catch {
    // not JSON: the caller decides
  }
  return undefined;
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** `text/html` from `text/html; charset=utf-8`, short whatever the server sent. */
function mediaType(value: string | undefined): string {
  const type = value?.split(';')[0]?.trim().slice(0, 100);
  return type || 'no content-type';
}

/**
 * A short, single-line piece of an error body that is not an ErrorResponse (a
 * proxy's HTML page). Cut after scrubbing, so that no piece of a secret survives.
 */
function rawSnippet(text: string): string | undefined {
  const snippet = text.replace(/\s+/g, ' ').trim();
  if (snippet === '') return undefined;
  return snippet.length > MAX_RAW_ERROR ? `${snippet.slice(0, MAX_RAW_ERROR)}…` : snippet;
}

function networkDetail(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = error.cause as { code?: unknown } | undefined;
    const causeCode = typeof cause?.code === 'string' ? cause.code : undefined;
    return [typeof code === 'string' ? code : undefined, causeCode, error.message]
      .filter((part, i, all) => part && all.indexOf(part) === i)
      .join(' ');
  }
  return String(error);
}
