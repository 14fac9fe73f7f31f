// The fleet's one way to the TES: one keep-alive connection pool shared by every run,
// at most FLEET_MAX_IN_FLIGHT requests in flight over all runs (a run's loop never has
// more than one), each attempt bounded by HEARTBEAT_TIMEOUT from the moment it gets its
// slot, so a slow run holds one slot for at most that long and never delays another's.
//
// Rule 9 with a shared pool. A sidecar recycles its connections after two failed attempts
// in a row; a fleet that did so per run would let one run whose TES answers 503 tear down
// every other run's connections (and their attempts in flight) every other attempt. The
// fleet counts instead per pool, as the contract reads ("per TES connection pool"): the
// failed attempts in a row of every run on the pool, in the order they end, any success
// resetting the count; and it recycles only when those failures come from at least two
// runs (or the pool serves a single run, as a sidecar's does). One run's failures say
// nothing about the connections the others use — that run's TES may simply be refusing
// it — so one failing run never makes everyone's connections churn; a TES, or a half-dead
// path to it, failing for everyone recycles at once. A run's loop asks for the recycling
// as before, and it happens only when the pool's own count agrees; the old pool is
// drained, not destroyed (other runs' attempts finish there), and failures of attempts
// that started on an old pool do not count against the new one.
import type { Clock } from '../clock.ts';
import type { Secrets } from '../secrets.ts';
import { Limiter } from '../limiter.ts';
import { TesClient, type TesClientOptions } from '../tes/client.ts';
import type { HeartbeatTaskRunRequest, TaskRunHeartbeat } from '../tes/types.gen.ts';

/** The TES client's settings (one pool for every run), with the fleet's own. */
export interface FleetTesOptions extends TesClientOptions {
  clock: Clock;
  secrets: Secrets;
  maxInFlight: number;
  /** How many runs share the pool now (one: rule 9 as in the sidecar). */
  runs(): number;
}

export class FleetTes {
  private readonly client: TesClient;
  private readonly inFlight: Limiter;
  /** Which pool an attempt ran on: counted failures of an older one are ignored. */
  private generation = 0;
  private failuresInARow = 0;
  /** The runs whose failures make up the current count. */
  private readonly failedRuns = new Set<string>();
  private readonly runs: () => number;

  constructor(options: FleetTesOptions) {
    const { maxInFlight, runs, ...client } = options;
    this.inFlight = new Limiter(maxInFlight);
    this.runs = runs;
    this.client = new TesClient(client);
  }

  /** Requests in flight now (for tests and the benchmark). */
  get busy(): number {
    return this.inFlight.busy;
  }

  /** One heartbeat attempt of `runId`, once a slot is free; aborting `signal` gives up the wait or the attempt. */
  async send(
    runId: string,
    body: HeartbeatTaskRunRequest,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<TaskRunHeartbeat> {
    return this.inFlight.run(() => this.attempt(runId, body, token, signal), signal);
  }

  private async attempt(
    runId: string,
    body: HeartbeatTaskRunRequest,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<TaskRunHeartbeat> {
    const generation = this.generation;
    try {
      const reply = await this.client.heartbeatTaskRun(runId, body, { ...(token ? { token } : {}), signal });
      if (generation === this.generation) {
        this.failuresInARow = 0;
        this.failedRuns.clear();
      }
      return reply;
    } catch (error) {
      if (generation === this.generation && (error as { retryable?: unknown }).retryable === true) {
        this.failuresInARow++;
        this.failedRuns.add(runId);
      }
      throw error;
    }
  }

  /** A run's loop saw two failures in a row: recycle only when the pool's own count agrees (false: declined). */
  async recycle(): Promise<boolean> {
    if (this.failuresInARow < 2 || (this.failedRuns.size < 2 && this.runs() > 1)) return false;
    this.failuresInARow = 0;
    this.failedRuns.clear();
    this.generation++;
    await this.client.resetConnections('drain');
    return true;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
