// The Event writer against the fake API server over HTTPS: what it POSTs passes
// kube-apiserver's checks for a new events.k8s.io/v1 Event (the fake answers 422 as
// the real one does when a required field is missing), and a refused write is one warn.
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthEvent } from '../../src/heartbeat/health-events.ts';
import { KubeApi, KubeError } from '../../src/kube/api.ts';
import { microTime, podEvent, PodEventWriter } from '../../src/kube/events.ts';
import { type FakeKube, startFakeKube } from '../support/fake-kube-api.ts';
import { loggerWithLines } from '../support/log-lines.ts';

const NS = 'tasks';
const FAILING: HealthEvent = { reason: 'HeartbeatFailing', type: 'Warning', note: 'HTTP 503' };
const EVENTS_PATH = `/apis/events.k8s.io/v1/namespaces/${NS}/events`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{
  kube: FakeKube;
  api: KubeApi;
  writer: PodEventWriter;
  logs: Record<string, unknown>[];
}> {
  const kube = await startFakeKube();
  const api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
  cleanups.push(
    () => kube.close(),
    () => api.close(),
  );
  const { log, lines: logs } = await loggerWithLines();
  const writer = new PodEventWriter({
    api,
    log,
    pod: () => ({ namespace: NS, name: 'task-pod', uid: '6f1c7e2a-0000-4000-8000-000000000001' }),
    now: () => Date.parse('2026-11-30T08:00:00.123Z'),
    timeoutMs: 2_000,
  });
  return { kube, api, writer, logs };
}

describe('the Event as POSTed', () => {
  it('is accepted as a new events.k8s.io/v1 Event on the pod, with a generated name', async () => {
    const { kube, writer } = await setup();
    expect(await writer.write(FAILING)).toBe(true);
    expect(kube.server.events.created).toHaveLength(1);
    expect(kube.server.events.created[0]).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: NS, name: expect.stringMatching(/^task-pod\.[0-9a-z]{5}$/) },
      eventTime: '2026-11-30T08:00:00.123000Z',
      action: 'Heartbeat',
      reason: 'HeartbeatFailing',
      type: 'Warning',
      note: 'HTTP 503',
      reportingController: 'tes-heartbeat',
      reportingInstance: 'task-pod',
      regarding: {
        kind: 'Pod',
        apiVersion: 'v1',
        namespace: NS,
        name: 'task-pod',
        uid: '6f1c7e2a-0000-4000-8000-000000000001',
      },
    });
  });

  it('has no uid in `regarding` before the pod was read, and keeps the note within 1 KiB', () => {
    const long = { ...FAILING, note: 'é'.repeat(2_000) };
    const event = podEvent(long, { namespace: NS, name: 'p'.repeat(200) }, 0);
    expect(event.regarding).toEqual({ kind: 'Pod', apiVersion: 'v1', namespace: NS, name: 'p'.repeat(200) });
    expect(Buffer.byteLength(event.note)).toBeLessThanOrEqual(1024);
    expect(event.reportingInstance).toHaveLength(128);
  });

  it.each([
    {
      desc: 'a whole millisecond',
      ms: Date.parse('2026-11-30T08:00:00Z'),
      text: '2026-11-30T08:00:00.000000Z',
    },
    {
      desc: 'a fractional reading',
      ms: Date.parse('2026-11-30T08:00:00.999Z') + 0.7,
      text: '2026-11-30T08:00:00.999000Z',
    },
  ])('eventTime is a MicroTime: $desc', ({ ms, text }) => {
    expect(microTime(ms)).toBe(text);
  });
});

describe('the fake API server checks what kube-apiserver checks', () => {
  const valid = () =>
    podEvent(FAILING, { namespace: NS, name: 'task-pod', uid: 'u-1' }, Date.now()) as unknown as Record<
      string,
      unknown
    >;
  const without = (field: string) => {
    const event = valid();
    delete event[field];
    return event;
  };
  it.each([
    { desc: 'no eventTime', event: () => without('eventTime'), status: 422, field: 'eventTime' },
    { desc: 'no action', event: () => without('action'), status: 422, field: 'action' },
    { desc: 'no reason', event: () => without('reason'), status: 422, field: 'reason' },
    {
      desc: 'no reportingController',
      event: () => without('reportingController'),
      status: 422,
      field: 'reportingController',
    },
    {
      desc: 'no reportingInstance',
      event: () => without('reportingInstance'),
      status: 422,
      field: 'reportingInstance',
    },
    {
      desc: 'a type that is neither Normal nor Warning',
      event: () => ({ ...valid(), type: 'Error' }),
      status: 422,
      field: 'type',
    },
    {
      desc: 'a note over 1 KiB',
      event: () => ({ ...valid(), note: 'x'.repeat(1025) }),
      status: 422,
      field: 'note',
    },
    {
      desc: 'no name and no generateName',
      event: () => ({ ...valid(), metadata: { namespace: NS } }),
      status: 422,
      field: 'metadata.name',
    },
    {
      desc: 'regarding without a namespace',
      event: () => ({ ...valid(), regarding: { kind: 'Pod', apiVersion: 'v1', name: 'task-pod' } }),
      status: 422,
      field: 'regarding.namespace',
    },
    {
      desc: 'eventTime in milliseconds only',
      event: () => ({ ...valid(), eventTime: new Date().toISOString() }),
      status: 400,
      field: undefined,
    },
    {
      desc: 'another namespace in metadata',
      event: () => ({ ...valid(), metadata: { generateName: 'x.', namespace: 'other' } }),
      status: 400,
      field: undefined,
    },
  ])('$desc: $status', async ({ event, status, field }) => {
    const { kube, api } = await setup();
    const error = await api.create(EVENTS_PATH, event(), { timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeError);
    expect((error as KubeError).status).toBe(status);
    expect((error as KubeError).message).toMatch(/^POST /);
    if (field) expect((error as KubeError).message).toContain(`${field}: `);
    expect(kube.server.events.created).toHaveLength(0);
  });
});

describe('a refused or failed write', () => {
  it('is logged once at warn, later at debug, and never thrown', async () => {
    const { kube, writer, logs } = await setup();
    kube.server.events.forbidden = true;
    expect(await writer.write(FAILING)).toBe(false);
    expect(await writer.write({ reason: 'HeartbeatRecovered', type: 'Normal', note: 'ok' })).toBe(false);
    kube.server.failNext({ method: 'POST' }, 'drop');
    expect(await writer.write(FAILING)).toBe(false);
    const refused = logs.filter((l) => String(l.msg).startsWith('cannot record an Event'));
    expect(refused.map((l) => l.level)).toEqual([40, 20, 20]);
    expect(JSON.stringify(refused[0])).toContain('403');
    expect(kube.server.events.created).toHaveLength(0);
  });

  it('gives up when its signal fires (the exit budget), without throwing', async () => {
    const { kube, writer } = await setup();
    kube.server.failNext({ method: 'POST' }, 'hang');
    const giveUp = new AbortController();
    const writing = writer.write(FAILING, giveUp.signal);
    giveUp.abort();
    expect(await writing).toBe(false);
  });
});
