// Paging through 2,500 runs under every sort field and direction, forwards with
// nextPageToken and backwards with prevPageToken from the last page: no run
// missed, none repeated, and the order the contract gives (ties in creation order).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/server.ts';
import { TesClient } from '../../src/tes/client.ts';
import type { TaskRunSummary } from '../../src/tes/types.gen.ts';
import { expectValidResponses, startCheckedEmulator } from '../support/emulator-harness.ts';
import { FakeClock } from '../support/fake-clock.ts';

const RUNS = 2_500;
const PAGE = 97; // not a divisor of 2,500: the last page is short

interface Seeded {
  id: string;
  index: number;
  name: string;
  status: string;
  timeCreated: number;
  timeModified: number;
}

describe('paging through 2,500 runs', () => {
  let emulator: Emulator;
  let client: TesClient;
  const seeded: Seeded[] = [];

  beforeAll(async () => {
    const clock = new FakeClock(Date.parse('2026-05-01T00:00:00Z'));
    emulator = await startCheckedEmulator({ clock, heartbeatTimeoutMs: 24 * 3_600_000 });
    client = new TesClient({ baseUrl: emulator.url, timeoutMs: 10_000 });
    const { store } = emulator;
    for (let index = 0; index < RUNS; index++) {
      // Every 3rd run shares its creation instant with the previous one; names repeat: many ties.
      if (index % 3 !== 0) await clock.advance(1_000);
      const name = `run-${String(index % 41).padStart(2, '0')}`;
      const id = store.create({ name }).id as string;
      seeded.push({
        id,
        index,
        name,
        status: 'Pending',
        timeCreated: clock.now(),
        timeModified: clock.now(),
      });
    }
    // Then modify some, at later and partly equal instants.
    for (const run of seeded) {
      if (run.index % 5 === 0) {
        if (run.index % 10 === 0) await clock.advance(500);
        store.heartbeat(run.id, {}, '{}');
        Object.assign(run, { status: 'Running', timeModified: clock.now() });
      } else if (run.index % 7 === 0) {
        await clock.advance(250);
        store.abort(run.id);
        Object.assign(run, { status: 'Aborted', timeModified: clock.now() });
      }
    }
  });
  afterAll(async () => {
    await client.close();
    await emulator.close();
  });
  afterEach(() => {
    expectValidResponses();
  });

  /** The order the contract promises, computed from what the test itself did. */
  function expectedOrder(field: keyof Seeded, descending: boolean): string[] {
    return [...seeded]
      .sort((a, b) => {
        const x = a[field];
        const y = b[field];
        const byField = x < y ? -1 : x > y ? 1 : 0;
        return (descending ? -byField : byField) || a.index - b.index;
      })
      .map((r) => r.id);
  }

  const cases = (['name', 'status', 'timeCreated', 'timeModified'] as const).flatMap((field) =>
    (['asc', 'desc'] as const).map((direction) => ({ field, direction })),
  );

  it.each(cases)(
    'sort=$field $direction: forwards and backwards, every run exactly once',
    async ({ field, direction }) => {
      const sort = `${field} ${direction}`;
      const forward: TaskRunSummary[] = [];
      let pageToken: string | undefined;
      let pages = 0;
      do {
        const page = await client.listTaskRuns({ sort, pageSize: PAGE, ...(pageToken && { pageToken }) });
        expect(page.totalItemCount).toBe(RUNS);
        expect(page.itemCount).toBe(page.items?.length);
        forward.push(...(page.items ?? []));
        pageToken = page.nextPageToken;
        pages += 1;
      } while (pageToken);
      expect(pages).toBe(Math.ceil(RUNS / PAGE));

      const ids = forward.map((r) => r.id as string);
      expect(new Set(ids).size).toBe(RUNS);
      expect(ids).toEqual(expectedOrder(field, direction === 'desc'));

      const first = await client.listTaskRuns({ sort, pageSize: PAGE });
      const backward: TaskRunSummary[][] = [];
      let token: string | undefined = first.lastPageToken;
      while (token) {
        const page = await client.listTaskRuns({ sort, pageSize: PAGE, pageToken: token });
        backward.unshift(page.items ?? []);
        token = page.prevPageToken;
      }
      expect(backward.flat().map((r) => r.id)).toEqual(ids);
    },
  );

  it('without sort: creation order', async () => {
    const page = await client.listTaskRuns({ pageSize: 1000 });
    expect(page.items?.map((r) => r.id)).toEqual(seeded.slice(0, 1000).map((r) => r.id));
  });
});
