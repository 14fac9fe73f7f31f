// Typed failures of the TES client. The agent decides what to retry from
// `retryable` and `retryAfterMs`; it never reads the message. Nothing here ever
// holds the bearer token: texts from the TES are scrubbed before they get here.

export type TesErrorCode =
  | 'TES_HTTP_ERROR'
  | 'TES_TIMEOUT'
  | 'TES_NETWORK_ERROR'
  /** A 2xx whose body is not what the operation answers (empty, or JSON but not an object). */
  | 'TES_BAD_RESPONSE'
  /** A 2xx whose body is not JSON at all: TES_URL points at something else, a web UI (rule 20). */
  | 'TES_NOT_A_TES'
  /** An answer body over the client's limit (rule 21); its connection was discarded. */
  | 'TES_RESPONSE_TOO_LARGE'
  /** A request that can't be sent at all, such as a bearer no header can carry (rule 12). */
  | 'TES_INVALID_REQUEST';

/** Failures worth another attempt: the next one may well succeed. */
const RETRYABLE_CODES: ReadonlySet<TesErrorCode> = new Set([
  'TES_TIMEOUT',
  'TES_NETWORK_ERROR',
  'TES_RESPONSE_TOO_LARGE',
]);

/** Statuses the contract retries (heartbeat policy rule 5). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export interface TesErrorInit {
  code: TesErrorCode;
  operation: string;
  method: string;
  url: string;
  status?: number | undefined;
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
  /** What went wrong when there is no HTTP status to say it (timeout, network, bad body). */
  detail?: string;
  /** See TesError.logOnce. */
  logOnce?: string;
}

export class TesError extends Error {
  readonly code: TesErrorCode;
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  readonly status?: number;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /**
   * Set on a failure that repeats identically on every call until someone fixes the
   * setup (rule 20: TES_URL answers, but it is no TES): the key under which a caller
   * logs it at error once, not on every heartbeat.
   */
  readonly logOnce?: string;

  constructor(init: TesErrorInit) {
    super(describe(init), init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'TesError';
    this.code = init.code;
    this.operation = init.operation;
    this.method = init.method;
    this.url = init.url;
    if (init.status !== undefined) this.status = init.status;
    if (init.errorCode !== undefined) this.errorCode = init.errorCode;
    if (init.errorMessage !== undefined) this.errorMessage = init.errorMessage;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.logOnce !== undefined) this.logOnce = init.logOnce;
    this.retryable =
      RETRYABLE_CODES.has(init.code) ||
      (init.code === 'TES_HTTP_ERROR' && init.status !== undefined && RETRYABLE_STATUSES.has(init.status));
  }
}

function describe(init: TesErrorInit): string {
  const what = [init.status !== undefined ? `HTTP ${init.status}` : init.code, init.errorCode]
    .filter(Boolean)
    .join(' ');
  const why = init.errorMessage ?? init.detail;
  return `${init.operation} ${init.method} ${init.url}: ${what}${why ? `: ${why}` : ''}`;
}

const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * The wait a `Retry-After` value asks for, in ms from `nowMs`: delay-seconds or
 * an HTTP-date (RFC 9110 §10.2.3). A date in the past is 0. Anything else —
 * negative, fractional, garbage, absent — is undefined.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  let at: number;
  if (IMF_FIXDATE.test(text) || RFC850_DATE.test(text)) at = Date.parse(text);
  // asctime carries no zone and is GMT by definition; Date.parse would read it as local time.
  else if (ASCTIME_DATE.test(text)) at = Date.parse(`${text} GMT`);
  else return undefined;
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
