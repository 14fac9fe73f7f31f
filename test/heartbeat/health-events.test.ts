// The Events' transitions as a pure state machine, driven by a fake clock
// (contract: Events on the task pod): one Event per transition, never one per heartbeat.
import { describe, expect, it } from 'vitest';
import {
  type FailureFacts,
  failingDueAt,
  failureFacts,
  type HealthEventReason,
  type HealthState,
  initialHealth,
  nextHealth,
} from '../../src/heartbeat/health-events.ts';
import { TesError } from '../../src/tes/errors.ts';
import { FakeClock } from '../support/fake-clock.ts';

const INTERVAL = 30_000;
const UNAVAILABLE: FailureFacts = { status: 503, serviceCode: 'UNAVAILABLE' };

/** One step of a script: let time pass, then something happens (or only a timer tick). */
type Step =
  | { after: number; beat: 'success' | 'failure'; final?: boolean; failure?: FailureFacts }
  | { after: number; tick: true };

async function play(
  steps: Step[],
): Promise<{ reasons: HealthEventReason[]; notes: string[]; state: HealthState }> {
  const clock = new FakeClock();
  let state = initialHealth(clock.monotonic());
  const reasons: HealthEventReason[] = [];
  const notes: string[] = [];
  for (const step of steps) {
    // The clock's wall time moves too: the machine must not read it.
    clock.stepWall(-3_600_000);
    await clock.advance(step.after);
    const at = clock.monotonic();
    const input =
      'tick' in step
        ? ({ kind: 'tick', at } as const)
        : ({
            kind: 'heartbeat',
            at,
            result: step.beat,
            final: step.final ?? false,
            ...(step.failure ? { failure: step.failure } : {}),
          } as const);
    const next = nextHealth(state, input, INTERVAL);
    state = next.state;
    if (next.event) {
      reasons.push(next.event.reason);
      notes.push(next.event.note);
    }
  }
  return { reasons, notes, state };
}

const ok = (after = INTERVAL): Step => ({ after, beat: 'success' });
const fail = (after = INTERVAL, failure: FailureFacts = UNAVAILABLE): Step => ({
  after,
  beat: 'failure',
  failure,
});
const tick = (after: number): Step => ({ after, tick: true });

describe('transitions', () => {
  const cases: { desc: string; steps: Step[]; reasons: HealthEventReason[] }[] = [
    { desc: 'healthy all along: no Event until the end', steps: [ok(0), ok(), ok(), ok()], reasons: [] },
    {
      desc: 'healthy, then the final heartbeat acknowledged',
      steps: [ok(0), ok(), { after: 5_000, beat: 'success', final: true }],
      reasons: ['FinalHeartbeatSent'],
    },
    {
      desc: 'failures younger than three intervals raise nothing (readiness still 200)',
      steps: [ok(0), fail(), fail(), fail(29_000)],
      reasons: [],
    },
    {
      desc: 'readiness turns 503 at the third interval after the last success: one Failing, however many failures',
      steps: [ok(0), fail(), fail(), fail(), fail(), fail(), fail()],
      reasons: ['HeartbeatFailing'],
    },
    {
      desc: 'a timer tick raises Failing while a heartbeat hangs, without any result',
      steps: [ok(0), tick(89_999), tick(1)],
      reasons: ['HeartbeatFailing'],
    },
    {
      desc: 'nothing succeeds for three intervals after the start: Failing by the timer alone',
      steps: [tick(60_000), tick(29_999), tick(1), tick(60_000)],
      reasons: ['HeartbeatFailing'],
    },
    {
      desc: 'failing, then the first success recovers once; later successes are quiet',
      steps: [ok(0), fail(), fail(), fail(), ok(), ok(), ok()],
      reasons: ['HeartbeatFailing', 'HeartbeatRecovered'],
    },
    {
      desc: 'fail, recover, fail again: each transition once',
      steps: [ok(0), tick(90_000), ok(), fail(), fail(), fail(), ok()],
      reasons: ['HeartbeatFailing', 'HeartbeatRecovered', 'HeartbeatFailing', 'HeartbeatRecovered'],
    },
    {
      desc: 'failing, recovering, then the end: the sequence an operator reads',
      steps: [tick(90_000), ok(), { after: 1_000, beat: 'success', final: true }],
      reasons: ['HeartbeatFailing', 'HeartbeatRecovered', 'FinalHeartbeatSent'],
    },
    {
      desc: 'a final heartbeat that fails: FinalHeartbeatFailed, even while healthy',
      steps: [ok(0), { after: 10_000, beat: 'failure', final: true, failure: UNAVAILABLE }],
      reasons: ['FinalHeartbeatFailed'],
    },
    {
      desc: 'after the final heartbeat nothing more, however long the sidecar waits for SIGTERM',
      steps: [
        ok(0),
        { after: 1_000, beat: 'success', final: true },
        tick(10 * INTERVAL),
        fail(),
        ok(),
        tick(10 * INTERVAL),
        { after: 0, beat: 'failure', final: true },
      ],
      reasons: ['FinalHeartbeatSent'],
    },
    {
      desc: 'a success before the three intervals from the start: no Failing at the old deadline',
      steps: [fail(), ok(50_000), tick(10_000), tick(79_000)],
      reasons: [],
    },
  ];
  for (const c of cases) {
    it(c.desc, async () => {
      expect((await play(c.steps)).reasons).toEqual(c.reasons);
    });
  }
});

describe('the timer', () => {
  const cases: { desc: string; state: HealthState; due: number | undefined }[] = [
    { desc: 'from the start before any success', state: initialHealth(1_000), due: 1_000 + 3 * INTERVAL },
    {
      desc: 'from the last success once ready',
      state: { phase: 'ready', startedAt: 0, lastSuccessAt: 50_000 },
      due: 50_000 + 3 * INTERVAL,
    },
    {
      desc: 'none while failing',
      state: { phase: 'failing', startedAt: 0, failingSince: 1 },
      due: undefined,
    },
    { desc: 'none after the end', state: { phase: 'ended', startedAt: 0 }, due: undefined },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      expect(failingDueAt(c.state, INTERVAL)).toBe(c.due);
    });
  }
});

describe('notes', () => {
  it('name the last failure by its status and the service code, with the age', async () => {
    const { notes } = await play([ok(0), fail(), fail(), fail()]);
    expect(notes[0]).toContain('No heartbeat has succeeded for 1m30s');
    expect(notes[0]).toContain('HTTP 503 (service error code UNAVAILABLE)');
  });

  it('say when nothing has succeeded since the start, and when nothing was answered', async () => {
    const { notes } = await play([tick(90_000)]);
    expect(notes[0]).toContain('since the agent started 1m30s ago');
    expect(notes[0]).toContain('no heartbeat has been answered yet');
  });

  it('say when the last attempt was cut off without an answer (the final deadline)', async () => {
    const cutOff = failureFacts(new Error('heartbeat attempt cut off: FINAL_HEARTBEAT_DEADLINE passed'));
    const { notes } = await play([ok(0), { after: 1_000, beat: 'failure', final: true, failure: cutOff }]);
    expect(notes[0]).toContain('the last attempt ended without an answer');
  });

  it('say how long heartbeats failed on recovery', async () => {
    const { notes } = await play([tick(90_000), ok(45_000)]);
    expect(notes[1]).toBe('Heartbeats succeed again, after failing for 45s.');
  });

  const errors: { desc: string; error: unknown; facts: FailureFacts }[] = [
    {
      desc: 'an HTTP error: status and service code',
      error: new TesError({
        code: 'TES_HTTP_ERROR',
        operation: 'HeartbeatTaskRun',
        method: 'POST',
        url: 'http://tes/v1/tasks/runs/r:heartbeat',
        status: 409,
        errorCode: 'NONCE_MISMATCH',
        errorMessage: 'nonce-secret-1234 does not match',
      }),
      facts: { status: 409, serviceCode: 'NONCE_MISMATCH' },
    },
    {
      desc: 'a refused connection: the errno, not the client code',
      error: new TesError({
        code: 'TES_NETWORK_ERROR',
        operation: 'HeartbeatTaskRun',
        method: 'POST',
        url: 'http://tes',
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      }),
      facts: { code: 'ECONNREFUSED' },
    },
    {
      desc: 'a timeout',
      error: new TesError({ code: 'TES_TIMEOUT', operation: 'HeartbeatTaskRun', method: 'POST', url: 'x' }),
      facts: { code: 'TES_TIMEOUT' },
    },
    {
      desc: 'a 2xx that is not JSON keeps both status and code',
      error: new TesError({
        code: 'TES_BAD_RESPONSE',
        operation: 'HeartbeatTaskRun',
        method: 'POST',
        url: 'x',
        status: 200,
      }),
      facts: { status: 200, code: 'TES_BAD_RESPONSE' },
    },
    {
      desc: 'a service code that is not an identifier (an echoed secret) is left out',
      error: { status: 400, errorCode: 'Bearer eyJhbGciOi.secret token' },
      facts: { status: 400 },
    },
    { desc: 'not an error at all', error: 'boom', facts: {} },
  ];
  for (const c of errors) {
    it(`failure facts: ${c.desc}`, () => {
      expect(failureFacts(c.error)).toEqual(c.facts);
    });
  }

  it('stay within 1 KiB and carry no message text from the TES', async () => {
    const { notes } = await play([
      ok(0),
      { after: 1_000, beat: 'failure', final: true, failure: failureFacts(errors[0]?.error) },
    ]);
    expect(Buffer.byteLength(notes[0] ?? '')).toBeLessThanOrEqual(1024);
    expect(notes[0]).not.toContain('nonce-secret');
    expect(notes[0]).toContain('HTTP 409 (service error code NONCE_MISMATCH)');
  });
});
