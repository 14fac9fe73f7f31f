// LIST then WATCH, kept alive, after client-node's ListWatch: the WATCH starts from
// the LIST's resourceVersion and resumes from the newest one seen (bookmarks included).
// A 410 re-lists and watches from the new LIST's resourceVersion — never from an
// object's own, which can be older than the server's window and 410 again. Failures
// back off 1 s doubling to 30 s on the Clock, reset by any event; nothing is lost
// meanwhile, since a resumed watch replays what happened.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { type KubeApi, KubeError, type Status, type WatchEnd } from './api.ts';
import { kubeBackoffMs } from './backoff.ts';

interface Versioned {
  metadata?: { resourceVersion?: string | undefined } | undefined;
}

/** What a callback returns to end the loop (the promise then resolves). */
export type Stop = 'stop' | undefined;

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
}

type Outcome =
  | { kind: 'stop' }
  | { kind: 'gone' }
  | { kind: 'ended'; end: WatchEnd; events: number }
  | { kind: 'failed'; error: KubeError | Status };

export async function listWatch<T extends Versioned>(options: ListWatchOptions<T>): Promise<void> {
  const { api, clock, log, signal, path } = options;
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
        const list = await api.list<T>(path, options.selectors ?? {}, {
          timeoutMs: options.timeoutMs,
          signal,
        });
        resourceVersion = list.resourceVersion;
        if (options.onList(list.items) === 'stop') return;
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof KubeError)) throw error;
        log.warn(
          { path, code: error.code, status: error.status, err: error.message },
          'list failed; retrying',
        );
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
      case 'gone':
        log.info({ path, resourceVersion }, 'watch expired (410); listing again');
        if (goneAgain) await backOff(); // a server that keeps answering 410 must not spin us
        goneAgain = true;
        resourceVersion = undefined;
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
            ended = event.object.code === 410 ? { kind: 'gone' } : { kind: 'failed', error: event.object };
            stop.abort();
            return;
          }
          events++;
          onProgress(event.object.metadata?.resourceVersion);
          if (event.type !== 'BOOKMARK' && options.onEvent(event.type, event.object) === 'stop') {
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
    return ended ?? { kind: 'ended', end, events };
  } catch (error) {
    if (ended) return ended;
    if (!(error instanceof KubeError)) throw error;
    if (error.status === 410) return { kind: 'gone' };
    return { kind: 'failed', error };
  }
}
