// Runs a person would find in a developer's emulator, made through the API with a
// FakeClock setting when each heartbeat arrives: a two-container task that went
// from Unschedulable to exit 0, one killed for memory, one still running and one
// whose agent never started. The web page's tests and its screenshot use them.
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { send } from './emulator-http.ts';
import type { FakeClock } from './fake-clock.ts';

export const NONCE = 'nonce-never-shown-7f3a';

type State = 'Unschedulable' | 'ContainerCreating' | 'running' | number;

export interface SeededRuns {
  completed: string;
  failed: string;
  running: string;
  pending: string;
  /** The bearer the heartbeats got back for the running run (scoped to it). */
  runningJwt?: string;
}

function container(name: string, state: State, at: Date) {
  if (typeof state === 'number')
    return {
      name,
      state: {
        terminated: {
          exitCode: state,
          reason: state === 0 ? 'Completed' : state === 137 ? 'OOMKilled' : 'Error',
          finishedAt: at.toISOString(),
        },
      },
    };
  if (state === 'running') return { name, state: { running: { startedAt: at.toISOString() } } };
  return { name, state: { waiting: { reason: state } } };
}

export class RunSeeder {
  private readonly url: string;
  private readonly clock: FakeClock;
  private readonly token: string | undefined;

  constructor(url: string, clock: FakeClock, token?: string) {
    this.url = url;
    this.clock = clock;
    this.token = token;
  }

  async create(name: string): Promise<string> {
    const res = await send(this.url, '/v1/tasks/runs', {
      method: 'POST',
      body: JSON.stringify({ name }),
      ...(this.token && { token: this.token }),
    });
    if (res.status !== 201) throw new Error(`create ${name}: HTTP ${res.status} ${res.text}`);
    return res.json.id as string;
  }

  /** One heartbeat now (the fake clock's now), with these containers; returns the jwt it got. */
  async beat(
    id: string,
    containers: [string, State][],
    options: { final?: boolean; podName?: string } = {},
  ): Promise<string | undefined> {
    const at = new Date(this.clock.now());
    const body: HeartbeatTaskRunRequest = {
      podName: options.podName ?? 'task-x7k2p',
      nonce: NONCE,
      jobRetryCount: 0,
      containerStatus: containers.map(([name, state]) => container(name, state, at)),
      ...(options.final && { lastHeartbeat: true }),
    };
    const res = await send(this.url, `/v1/tasks/runs/${encodeURIComponent(id)}:heartbeat`, {
      method: 'POST',
      body: JSON.stringify(body),
      ...(this.token && { token: this.token }),
    });
    if (res.status !== 200) throw new Error(`heartbeat on ${id}: HTTP ${res.status} ${res.text}`);
    return res.json.jwt as string | undefined;
  }

  /** The four runs, created over about eight minutes of fake time. */
  async seed(): Promise<SeededRuns> {
    const completed = await this.create('align NA12878 (bwa mem)');
    const pod = { podName: 'align-na12878-x7k2p' };
    await this.beat(
      completed,
      [
        ['align', 'Unschedulable'],
        ['upload', 'Unschedulable'],
      ],
      pod,
    );
    await this.clock.advance(40_000);
    await this.beat(
      completed,
      [
        ['align', 'ContainerCreating'],
        ['upload', 'ContainerCreating'],
      ],
      pod,
    );
    await this.clock.advance(25_000);
    for (let i = 0; i < 6; i++) {
      await this.beat(
        completed,
        [
          ['align', 'running'],
          ['upload', 'running'],
        ],
        pod,
      );
      await this.clock.advance(30_000);
    }
    await this.beat(
      completed,
      [
        ['align', 0],
        ['upload', 'running'],
      ],
      pod,
    );
    await this.clock.advance(20_000);
    await this.beat(
      completed,
      [
        ['align', 0],
        ['upload', 0],
      ],
      { ...pod, final: true },
    );

    const failed = await this.create('call variants chr20 (gatk)');
    const gatk = { podName: 'call-chr20-q9m4d' };
    await this.beat(failed, [['gatk', 'ContainerCreating']], gatk);
    await this.clock.advance(15_000);
    for (let i = 0; i < 4; i++) {
      await this.beat(failed, [['gatk', 'running']], gatk);
      await this.clock.advance(30_000);
    }
    await this.beat(failed, [['gatk', 137]], { ...gatk, final: true });

    await this.clock.advance(10_000);
    const running = await this.create('index reference GRCh38');
    const index = { podName: 'index-grch38-b2v8n' };
    await this.beat(running, [['index', 'ContainerCreating']], index);
    await this.clock.advance(20_000);
    let runningJwt: string | undefined;
    for (let i = 0; i < 3; i++) {
      runningJwt = await this.beat(running, [['index', 'running']], index);
      await this.clock.advance(30_000);
    }
    const pending = await this.create('qc report');
    await this.clock.advance(5_000);
    return { completed, failed, running, pending, ...(runningJwt && { runningJwt }) };
  }
}
