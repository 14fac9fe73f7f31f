// The emulator's runs, in memory, and the rules of the five operations: the
// lifecycle, nonce fencing, listing with filters, sort and page tokens. No HTTP
// here: the server maps requests onto these methods and EmulatorError onto
// ErrorResponse. Time comes from the injected Clock; a Running run without a
// heartbeat for `heartbeatTimeoutMs` turns TimedOut the moment anyone looks.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { formatDuration } from '../config/duration.ts';
import type {
  ContainerStatus,
  CreateTaskRunRequest,
  Execution,
  HeartbeatTaskRunRequest,
  TaskRun,
  TaskRunSummary,
  TaskRunSummaryPagedItems,
} from '../tes/types.gen.ts';

export class EmulatorError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown[];
  constructor(status: number, code: string, message: string, details: unknown[] = []) {
    super(message);
    this.name = 'EmulatorError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['Completed', 'Failed', 'Aborted', 'TimedOut']);

/** The definition's limit on `statusDetails`: generated clients reject longer ones. */
const MAX_STATUS_DETAILS = 4096;
const SORT_FIELDS = ['name', 'status', 'timeCreated', 'timeModified'] as const;
type SortField = (typeof SORT_FIELDS)[number];

interface RunRecord {
  id: string;
  name?: string;
  description?: string;
  acl: string[];
  execution?: Execution;
  version?: string;
  status: string;
  statusDetails?: string;
  timeCreated: number;
  timeModified: number;
  /** Set by the first accepted heartbeat; `nonce` undefined then means "fixed as absent". */
  nonceFixed: boolean;
  nonce?: string;
  /** Accepted heartbeats, oldest first. */
  heartbeats: ReceivedHeartbeat[];
}

/** An accepted heartbeat: its body exactly as received and when it arrived (wall clock, ms). */
export interface ReceivedHeartbeat {
  raw: string;
  at: number;
}

/** A run as the web page shows it: its summary and the heartbeats it accepted, oldest first. */
export interface RunActivity {
  run: TaskRunSummary;
  heartbeats: readonly ReceivedHeartbeat[];
}

export interface ListQuery {
  sort?: { field: SortField; descending: boolean };
  names?: string[];
  status?: string[];
  versions?: string[];
  acls?: string[];
  pageSize: number;
  offset: number;
}

export interface RunStoreOptions {
  clock: Clock;
  heartbeatTimeoutMs: number;
  /** Base URL for `href`, known once the server listens. */
  baseUrl: () => string;
}

/** Extras the HTTP API cannot set, for tests and simulations creating runs in process. */
export interface CreateExtras {
  id?: string;
  /** The run's task version (`taskVersionSummary.version`), which `versions` filters on. */
  version?: string;
}

export class RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private readonly options: RunStoreOptions;

  constructor(options: RunStoreOptions) {
    this.options = options;
  }

  get size(): number {
    return this.runs.size;
  }

  create(request: CreateTaskRunRequest = {}, extras: CreateExtras = {}): TaskRun {
    const id = extras.id ?? `trn.${randomBytes(16).toString('hex')}`;
    if (this.runs.has(id)) throw new EmulatorError(400, 'DuplicateRun', `run '${id}' already exists`);
    const now = this.options.clock.now();
    const run: RunRecord = {
      id,
      acl: request.acl ?? [],
      status: 'Pending',
      timeCreated: now,
      timeModified: now,
      nonceFixed: false,
      heartbeats: [],
    };
    if (request.name !== undefined) run.name = request.name;
    if (request.description !== undefined) run.description = request.description;
    if (request.execution !== undefined) run.execution = request.execution;
    if (extras.version !== undefined) run.version = extras.version;
    this.runs.set(id, run);
    return this.taskRun(run);
  }

  get(id: string): TaskRun {
    return this.taskRun(this.find(id));
  }

  /** Throws 404 for an unknown run. */
  private find(id: string): RunRecord {
    const run = this.runs.get(id);
    if (!run) throw new EmulatorError(404, 'RunNotFound', `no task run '${id}'`);
    this.expire(run);
    return run;
  }

  abort(id: string): TaskRunSummary {
    const run = this.find(id);
    if (run.status !== 'Pending' && run.status !== 'Running')
      throw new EmulatorError(
        400,
        'InvalidRunState',
        `run is ${run.status}: only Pending or Running runs can be aborted`,
      );
    run.status = 'Aborted';
    run.statusDetails = 'aborted by request';
    run.timeModified = this.options.clock.now();
    return this.summary(run);
  }

  /** Applies an accepted-looking heartbeat; `raw` is the body as received ('{}' for none). */
  heartbeat(id: string, body: HeartbeatTaskRunRequest, raw: string): void {
    const run = this.find(id);
    if (TERMINAL_STATUSES.has(run.status))
      throw new EmulatorError(400, 'InvalidRunState', `run is ${run.status}: heartbeats are refused`);
    if (run.nonceFixed && run.nonce !== body.nonce)
      // Never echo either nonce: it is a credential of sorts.
      throw new EmulatorError(409, 'NonceMismatch', "the heartbeat's nonce does not match the run's");
    if (!run.nonceFixed) {
      run.nonceFixed = true;
      if (body.nonce !== undefined) run.nonce = body.nonce;
    }
    const now = this.options.clock.now();
    run.heartbeats.push({ raw, at: now });
    run.timeModified = now;
    if (run.status === 'Pending') run.status = 'Running';
    if (body.lastHeartbeat === true) {
      const outcome = finalOutcome(body.containerStatus);
      run.status = outcome.status;
      if (outcome.details !== undefined) run.statusDetails = outcome.details;
    }
  }

  heartbeatLog(id: string): readonly ReceivedHeartbeat[] {
    return this.find(id).heartbeats;
  }

  activity(id: string): RunActivity {
    const run = this.find(id);
    return { run: this.summary(run), heartbeats: run.heartbeats };
  }

  /** The newest `limit` runs, newest first, and how many there are in all. */
  newest(limit: number): { total: number; runs: RunActivity[] } {
    const all = [...this.runs.values()];
    const runs = all
      .slice(-limit)
      .reverse()
      .map((run) => {
        this.expire(run);
        return { run: this.summary(run), heartbeats: run.heartbeats };
      });
    return { total: all.length, runs };
  }

  list(query: ListQuery): TaskRunSummaryPagedItems {
    const matched: RunRecord[] = [];
    for (const run of this.runs.values()) {
      this.expire(run);
      if (matches(run, query)) matched.push(run);
    }
    // Array#sort is stable and the map iterates in creation order, so ties keep it.
    if (query.sort) {
      const { field, descending } = query.sort;
      matched.sort((a, b) => (descending ? -1 : 1) * compare(sortKey(a, field), sortKey(b, field)));
    }
    const { pageSize: size, offset } = query;
    const total = matched.length;
    const page: TaskRunSummaryPagedItems = {
      items: matched.slice(offset, offset + size).map((run) => this.summary(run)),
      firstPageToken: encodePageToken(0),
      lastPageToken: encodePageToken(total === 0 ? 0 : Math.floor((total - 1) / size) * size),
      totalItemCount: total,
      totalPageCount: Math.ceil(total / size),
    };
    page.itemCount = page.items?.length ?? 0;
    if (offset + size < total) page.nextPageToken = encodePageToken(offset + size);
    if (offset > 0) page.prevPageToken = encodePageToken(Math.max(0, offset - size));
    return page;
  }

  private expire(run: RunRecord): void {
    const timeout = this.options.heartbeatTimeoutMs;
    const last = run.heartbeats.at(-1)?.at;
    if (run.status !== 'Running' || last === undefined) return;
    if (this.options.clock.now() - last < timeout) return;
    run.status = 'TimedOut';
    run.statusDetails = `no heartbeat for ${formatDuration(timeout)}`;
    run.timeModified = last + timeout;
  }

  private summary(run: RunRecord): TaskRunSummary {
    const summary: TaskRunSummary = {
      id: run.id,
      href: `${this.options.baseUrl()}/v1/tasks/runs/${encodeURIComponent(run.id)}`,
      urn: `urn:tes-emulator:taskrun:${run.id}`,
    };
    if (run.name !== undefined) summary.name = run.name;
    if (run.description !== undefined) summary.description = run.description;
    summary.status = run.status;
    if (run.statusDetails !== undefined) summary.statusDetails = run.statusDetails;
    if (run.version !== undefined) summary.taskVersionSummary = { version: run.version };
    summary.acl = run.acl;
    summary.timeCreated = new Date(run.timeCreated).toISOString();
    summary.timeModified = new Date(run.timeModified).toISOString();
    return summary;
  }

  private taskRun(run: RunRecord): TaskRun {
    const taskRun: TaskRun = this.summary(run);
    if (run.execution !== undefined) taskRun.execution = run.execution;
    return taskRun;
  }
}

function matches(run: RunRecord, query: ListQuery): boolean {
  const anyOf = (wanted: string[] | undefined, value: string | undefined) =>
    wanted === undefined || (value !== undefined && wanted.includes(value));
  return (
    anyOf(query.names, run.name) &&
    anyOf(query.status, run.status) &&
    anyOf(query.versions, run.version) &&
    (query.acls === undefined || run.acl.some((entry) => query.acls?.includes(entry)))
  );
}

function sortKey(run: RunRecord, field: SortField): string | number {
  switch (field) {
    case 'name':
      return run.name ?? '';
    case 'status':
      return run.status;
    case 'timeCreated':
      return run.timeCreated;
    case 'timeModified':
      return run.timeModified;
  }
}

function compare(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Completed only when containers were reported and every one terminated with exit code 0. */
function finalOutcome(containers: ContainerStatus[] | undefined): {
  status: 'Completed' | 'Failed';
  details?: string;
} {
  const reported = containers ?? [];
  if (reported.length === 0)
    return { status: 'Failed', details: 'the final heartbeat reported no container status' };
  const failed = reported
    .map((container, i) => ({ container, i }))
    .filter(({ container }) => container.state?.terminated?.exitCode !== 0);
  if (failed.length === 0) return { status: 'Completed' };
  return {
    status: 'Failed',
    details: truncate(failed.map(({ container, i }) => describeContainer(container, i)).join('; ')),
  };
}

function describeContainer(container: ContainerStatus, index: number): string {
  const name = container.name ?? `container #${index}`;
  const { terminated, running, waiting } = container.state ?? {};
  const reason = (r: string | undefined) => (r ? ` (${r})` : '');
  if (terminated) {
    const signal = terminated.signal !== undefined ? `, signal ${terminated.signal}` : '';
    return `${name}: exit code ${terminated.exitCode ?? 'unknown'}${signal}${reason(terminated.reason)}`;
  }
  if (running) return `${name}: still running`;
  if (waiting) return `${name}: waiting${reason(waiting.reason)}`;
  return `${name}: no state reported`;
}

function truncate(text: string): string {
  if (text.length <= MAX_STATUS_DETAILS) return text;
  let cut = text.slice(0, MAX_STATUS_DETAILS - 1);
  // Never leave half a surrogate pair behind.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

// Page tokens hold only a position; the caller sends sort, filters and pageSize again.
function encodePageToken(offset: number): string {
  return Buffer.from(`o${offset}`).toString('base64url');
}

function decodePageToken(token: string): number | undefined {
  const match = /^o(0|[1-9]\d{0,8})$/.exec(Buffer.from(token, 'base64url').toString('latin1'));
  if (!match || encodePageToken(Number(match[1])) !== token) return undefined;
  return Number(match[1]);
}

/** ListTaskRuns' query string as the contract reads it; every problem is one 400. */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const problems: { field: string; message: string }[] = [];
  const list = (name: string) => {
    const values = params
      .getAll(name)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    return values.length > 0 ? values : undefined;
  };
  const query: ListQuery = { pageSize: 10, offset: 0 };
  for (const name of ['names', 'status', 'versions', 'acls'] as const) {
    const values = list(name);
    if (values) query[name] = values;
  }

  const sort = params.get('sort')?.trim();
  if (sort) {
    // URLSearchParams already turned a `+` into the space.
    const [rawField, direction, ...rest] = sort.split(/\s+/);
    const field = SORT_FIELDS.find((f) => f.toLowerCase() === rawField?.toLowerCase());
    const dir = direction?.toLowerCase();
    if (!field || rest.length > 0 || (dir !== undefined && dir !== 'asc' && dir !== 'desc'))
      problems.push({
        field: 'sort',
        message: `'${sort}' is not FIELD or 'FIELD asc|desc' with FIELD one of ${SORT_FIELDS.join(', ')}`,
      });
    else query.sort = { field, descending: dir === 'desc' };
  }

  const pageSize = params.get('pageSize');
  if (pageSize !== null && pageSize !== '') {
    const n = /^-?\d+$/.test(pageSize.trim()) ? Number(pageSize) : Number.NaN;
    if (!(n >= 1 && n <= 1000))
      problems.push({ field: 'pageSize', message: `'${pageSize}' is not an integer from 1 to 1000` });
    else query.pageSize = n;
  }

  const pageToken = params.get('pageToken');
  if (pageToken !== null && pageToken !== '') {
    const offset = decodePageToken(pageToken);
    if (offset === undefined)
      problems.push({ field: 'pageToken', message: 'not a page token of this service' });
    else query.offset = offset;
  }

  if (problems.length > 0)
    throw new EmulatorError(
      400,
      'InvalidQuery',
      problems.map((p) => `${p.field}: ${p.message}`).join('; '),
      problems,
    );
  return query;
}
