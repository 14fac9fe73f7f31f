// The Events driver on a fake clock: the timer that raises HeartbeatFailing when
// nothing happens, Events written in order and off the heartbeat's path, and the
// exit budget for a write that never ends.
import { describe, expect, it } from 'vitest';
import { PodEvents } from '../../src/engine/pod-events.ts';
import type { HealthEvent } from '../../src/heartbeat/health-events.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

const INTERVAL = 1_000;

function harness(write?: (event: HealthEvent) => Promise<unknown>) {
  const clock = new FakeClock();
  const written: string[] = [];
  const events = new PodEvents({
    clock,
    intervalMs: INTERVAL,
    write: async (event, signal) => {
      written.push(event.reason);
      if (write)
        await Promise.race([
          write(event),
          new Promise((resolve) => signal.addEventListener('abort', resolve)),
        ]);
    },
  });
  return { clock, events, written };
}

const success = { last: false, attempts: 1 };

describe('PodEvents', () => {
  it('raises HeartbeatFailing by its timer three intervals after the start, and not a moment before', async () => {
    const { clock, written } = harness();
    await clock.advance(3 * INTERVAL - 1);
    expect(written).toEqual([]);
    await clock.advance(1);
    expect(written).toEqual(['HeartbeatFailing']);
    await clock.advance(10 * INTERVAL);
    expect(written).toEqual(['HeartbeatFailing']);
  });

  it('moves its timer to three intervals after each success', async () => {
    const { clock, events, written } = harness();
    await clock.advance(2 * INTERVAL);
    events.heartbeat('success', clock.now(), success);
    await clock.advance(3 * INTERVAL - 1);
    expect(written).toEqual([]);
    await clock.advance(1);
    expect(written).toEqual(['HeartbeatFailing']);
    events.heartbeat('success', clock.now(), success);
    await settle();
    expect(written).toEqual(['HeartbeatFailing', 'HeartbeatRecovered']);
  });

  it('returns from the observer at once and writes in order, one after the other', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { clock, events, written } = harness((event) =>
      event.reason === 'HeartbeatFailing' ? held : Promise.resolve(),
    );
    await clock.advance(3 * INTERVAL);
    events.heartbeat('success', clock.now(), success);
    events.heartbeat('failure', clock.now(), { last: true, attempts: 3, error: { status: 503 } });
    await settle();
    // The Failing write hangs: the others wait behind it, the observer did not.
    expect(written).toEqual(['HeartbeatFailing']);
    release();
    await settle();
    expect(written).toEqual(['HeartbeatFailing', 'HeartbeatRecovered', 'FinalHeartbeatFailed']);
  });

  it('gives a write that never ends its budget at close, then gives it up; nothing after', async () => {
    const { clock, events, written } = harness(() => new Promise(() => {}));
    events.heartbeat('success', clock.now(), { last: true, attempts: 1 });
    let closed = false;
    const closing = events.close(1_000).then(() => {
      closed = true;
    });
    await clock.advance(999);
    expect(closed).toBe(false);
    await clock.advance(1);
    await closing;
    events.heartbeat('failure', clock.now(), success);
    await clock.advance(10 * INTERVAL);
    expect(written).toEqual(['FinalHeartbeatSent']);
  });
});
