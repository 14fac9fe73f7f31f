// Rule 14 on the built agent: the wall clock of the agent's process is stepped back
// and forward by 10 minutes while it runs (libfaketime, Debian's `faketime` package,
// which `./dev test` installs), and the heartbeats keep their cadence while /readyz
// stays ready. Monotonic time and timers are left alone (FAKETIME_DONT_FAKE_MONOTONIC),
// as an NTP step or a resumed VM leave them. The TES speaks plain HTTP, and the fake API
// server's certificate is older than 10 minutes, so a stepped-back clock breaks no TLS.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, getListener, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const hasFaketime = existsSync(LIBFAKETIME);
const INTERVAL_MS = 300;
const PHASE_MS = 1_500;

const after = stopAfterEach();

describe('rule 14: a wall-clock step changes no heartbeat timing', () => {
  it.skipIf(!hasFaketime)(
    `keeps the cadence and stays ready when the clock steps −600 s and +600 s${hasFaketime ? '' : ` (skipped: ${LIBFAKETIME} is missing; ./dev test installs faketime)`}`,
    async () => {
      const { tes, env } = await after.world({ runId: 'run-clock-1', podStatus: { phase: 'Pending' } });
      const dir = await mkdtemp(path.join(tmpdir(), 'clock-'));
      after.defer(() => rm(dir, { recursive: true, force: true }));
      const offset = path.join(dir, 'offset');
      await writeFile(offset, '+0\n');
      const port = await freePort();
      const agent = after.agent({
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offset,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        ...env,
        JOB_RETRY_COUNT: '0',
        HARDWARE_DETAILS: 'off',
        EVENTS: 'off',
        HEARTBEAT_INTERVAL: `${INTERVAL_MS}ms`,
        FINAL_HEARTBEAT_DEADLINE: '1s',
        HTTP_ADDR: `127.0.0.1:${port}`,
      });
      const get = (p: string) => getListener(port, p);
      await waitFor(
        async () => (await get('/readyz').catch(() => undefined))?.status === 200,
        10_000,
        'ready',
      );

      /** Heartbeats during one phase, and every /readyz status seen meanwhile. */
      const phase = async () => {
        const before = tes.requests.length;
        const statuses = new Set<number>();
        const until = performance.now() + PHASE_MS;
        while (performance.now() < until) {
          statuses.add((await get('/readyz')).status);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return { beats: tes.requests.length - before, ready: [...statuses] };
      };
      const steady = await phase();
      await writeFile(offset, '-600\n');
      const back = await phase();
      // The wall clock only stamps: the last success is stamped 10 minutes in the past.
      const stamp = Number(
        /^tes_heartbeat_last_success_timestamp_seconds (\S+)$/m.exec((await get('/metrics')).body)?.[1],
      );
      expect(Date.now() / 1000 - stamp).toBeGreaterThan(590);
      await writeFile(offset, '+600\n');
      const forward = await phase();

      // About five heartbeats per phase at 300 ms; before rule 14, none after the step back.
      expect(steady.beats).toBeGreaterThanOrEqual(3);
      expect(back.beats).toBeGreaterThanOrEqual(3);
      expect(forward.beats).toBeGreaterThanOrEqual(3);
      // …and none early after the step forward: no burst beyond the cadence.
      expect(forward.beats).toBeLessThanOrEqual(PHASE_MS / (INTERVAL_MS * 0.9) + 1);
      expect(back.ready).toEqual([200]);
      expect(forward.ready).toEqual([200]);

      agent.child.kill('SIGTERM');
      expect(await agent.exited).toEqual({ code: 0, signal: null });
    },
  );
});
