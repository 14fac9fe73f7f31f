// LIST then WATCH, kept alive, after client-node's ListWatch: the WATCH starts from
// the LIST's resourceVersion and resumes from the newest one applied (bookmarks
// included) — an event whose callback threw is replayed, not skipped (rule 21).
// An expiry (410, or a Status saying Expired/Gone) and a line too long to read
// re-list, and the watch goes on from the new LIST's resourceVersion — never from an
// object's own, which can be older than the server's window and 410 again. Failures
// back off 1 s doubling to 30 s on the Clock, reset by any event; nothing is lost
// meanwhile, since a resumed watch replays what happened.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { isExpired, type KubeApi, KubeError } from './api.ts';
import type { Status } from './types.ts';
import { kubeBackoffMs } from './backoff.ts';

interface Versioned {
  metadata?: { resourceVersion?: string | undefined } | undefined;
}

/** What a callback returns to end the loop (the promise then resolves). */
export type Stop = 'stop' | undefined;

/** Nodes per LIST page (webhook, cluster fleet): ~5–15 KB each, so a page is a few MB read well within the timeout. */
export const NODE_PAGE_SIZE = 500;

export interface ListWatchOptions<T> {
  api: KubeApi;
  /** A collection path, e.g. `/api/v1/nodes` or `/api/v1/namespaces/ns/pods`. */
  path: string;
  /** Selectors sent with both the LIST and the WATCH (`fieldSelector`, `labelSelector`). */
  selectors?: Record<string, string>;
  /** Bound on each LIST and on opening each watch. */
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  /** Ends the loop; the promise then resolves with no timer or stream left. */
  signal: AbortSignal;
  /** The full state after each LIST (the first, and each after a 410). */
  onList(items: T[]): Stop;
  onEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): Stop;
  /** Each watch opened after the first (a metric). */
  onRestart?(): void;
  /** Server-side end of each watch request. Default 300. */
  watchTimeoutSeconds?: number;
  /** Silence after which an open stream is presumed dead and resumed. Default 90 s, above the API server's one-minute bookmarks. */
  idleTimeoutMs?: number;
  /**
   * LIST in pages of this many items (`limit`/`continue`), each page bounded by `timeoutMs`:
   * a big collection (thousands of nodes) is never one read that must finish in one timeout.
   * `onList` still gets the whole state, once, after the last page.
   */
  pageSize?: number;
  /** What of each listed item to hold until the last page (memory: thousands of full Node objects). */
  trim?(item: T): T;
}

type Outcome =
  | { kind: 'stop' }
  | { kind: 'relist'; why: 'expired' | 'oversized' }
  | { kind: 'ended'; end: 'closed' | 'idle'; events: number }
  | { kind: 'failed'; error: KubeError | Status }
  /** Our own callback threw: the event was not applied. */
  | { kind: 'unapplied'; error: unknown };

export async function listWatch<T extends Versioned>(options: ListWatchOptions<T>): Promise<void> {
  const { clock, log, signal, path } = options;
  let resourceVersion: string | undefined; // undefined: LIST first
  let failures = 0;
  let watches = 0;
  let goneAgain = false;

  const backOff = async (): Promise<void> => {
    failures++;
    const delayMs = kubeBackoffMs(failures, clock.random());
    log.debug({ path, delayMs, failures }, 'list/watch backing off');
    await clock.sleep(delayMs, signal).catch(() => {});
  };

  while (!signal.aborted) {
    if (resourceVersion === undefined) {
      try {
        const list = await listAll(options);
        if (options.onList(list.items) === 'stop') return;
        resourceVersion = list.resourceVersion; // only once the list was applied
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof KubeError) {
          log.warn(
            { path, code: error.code, status: error.status, err: error.message },
            'list failed; retrying',
          );
        } else {
          log.error({ path, err: error }, 'applying the list failed; listing again');
        }
        await backOff();
        continue;
      }
    }

    if (watches++ > 0) options.onRestart?.();
    const outcome = await watchOnce(options, resourceVersion, (version) => {
      resourceVersion = version ?? resourceVersion;
      failures = 0;
      goneAgain = false;
    });
    if (signal.aborted || outcome.kind === 'stop') return;

    switch (outcome.kind) {
      case 'relist':
        if (outcome.why === 'expired')
          log.info({ path, resourceVersion }, 'watch expired (410); listing again');
        else log.warn({ path, resourceVersion }, 'watch line longer than the limit; listing again');
        if (goneAgain) await backOff(); // a server that keeps expiring us must not spin us
        goneAgain = true;
        resourceVersion = undefined;
        break;
      case 'unapplied':
        log.error(
          { path, resourceVersion, err: outcome.error },
          'applying a watch event failed; resuming before it',
        );
        await backOff();
        break;
      case 'ended':
        log.debug(
          { path, end: outcome.end, events: outcome.events, resourceVersion },
          'watch ended; resuming',
        );
        // A stream closed at once with nothing in it could repeat forever: pace it.
        if (outcome.end === 'closed' && outcome.events === 0) await backOff();
        break;
      case 'failed': {
        const { error } = outcome;
        const fields =
          error instanceof KubeError
            ? { code: error.code, status: error.status, err: error.message }
            : { status: error.code, reason: error.reason, err: error.message };
        log.warn({ path, ...fields, resourceVersion }, 'watch failed; reconnecting');
        await backOff();
        break;
      }
    }
  }
}

/** One LIST, or every page of it with `pageSize`; the resourceVersion is the first page's snapshot. */
async function listAll<T>(options: ListWatchOptions<T>): Promise<{ items: T[]; resourceVersion: string }> {
  const { api, path, signal, timeoutMs } = options;
  const selectors = options.selectors ?? {};
  if (!options.pageSize) return api.list<T>(path, selectors, { timeoutMs, signal });
  const limit = String(options.pageSize);
  const first = await api.list<T>(path, { ...selectors, limit }, { timeoutMs, signal });
  const trim = options.trim ?? ((item: T) => item);
  const items = first.items.map(trim);
  // An expired continue token (410 after a compaction) fails the whole LIST: it starts over.
  for (let next = first.continue; next; ) {
    const page = await api.list<T>(path, { ...selectors, limit, continue: next }, { timeoutMs, signal });
    for (const item of page.items) items.push(trim(item));
    next = page.continue;
  }
  return { items, resourceVersion: first.resourceVersion };
}

async function watchOnce<T extends Versioned>(
  options: ListWatchOptions<T>,
  resourceVersion: string,
  onProgress: (resourceVersion: string | undefined) => void,
): Promise<Outcome> {
  const { api, signal, log, path } = options;
  const stop = new AbortController();
  let events = 0;
  let ended: Outcome | undefined;
  let badLines = 0;
  try {
    const end = await api.watch<T>(
      path,
      {
        ...options.selectors,
        resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(options.watchTimeoutSeconds ?? 300),
      },
      {
        signal: AbortSignal.any([signal, stop.signal]),
        connectTimeoutMs: options.timeoutMs,
        idleTimeoutMs: options.idleTimeoutMs ?? 90_000,
        onEvent: (event) => {
          if (ended) return;
          if (event.type === 'ERROR') {
            ended = isExpired(event.object)
              ? { kind: 'relist', why: 'expired' }
              : { kind: 'failed', error: event.object };
            stop.abort();
            return;
          }
          events++;
          let verdict: Stop;
          try {
            verdict = event.type === 'BOOKMARK' ? undefined : options.onEvent(event.type, event.object);
          } catch (error) {
            ended = { kind: 'unapplied', error };
            stop.abort();
            return;
          }
          // Rule 21: the resume point moves only past an event that was applied.
          onProgress(event.object.metadata?.resourceVersion);
          if (verdict === 'stop') {
            ended = { kind: 'stop' };
            stop.abort();
          }
        },
        onBadLine: () => {
          badLines++;
          log.warn({ path, badLines }, 'watch: ignored a line that is not a watch event');
        },
      },
    );
    if (ended) return ended;
    return end === 'oversized' ? { kind: 'relist', why: 'oversized' } : { kind: 'ended', end, events };
  } catch (error) {
    if (ended) return ended;
    if (!(error instanceof KubeError)) throw error;
    if (isExpired({ code: error.status, reason: error.reason })) return { kind: 'relist', why: 'expired' };
    return { kind: 'failed', error };
  }
}
