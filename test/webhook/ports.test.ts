// The agent's listener in someone else's pod (rule I2), the pure part.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  listenerConflict,
  listenerPort,
  withoutListener,
  withoutTakenPortName,
} from '../../src/webhook/ports.ts';

const agent = (env: V1Container['env'], extra: Partial<V1Container> = {}): V1Container => ({
  name: 'tes-heartbeat',
  image: 'x',
  ...(env && { env }),
  ...extra,
});
const pod = (ports: number[], extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod => ({
  spec: {
    containers: [{ name: 'task', image: 't', ports: ports.map((containerPort) => ({ containerPort })) }],
    ...extra,
  },
});

describe('listenerPort', () => {
  it.each<[string, V1Container['env'], number | undefined]>([
    ['no env: the agent default', undefined, 9090],
    ['HTTP_ADDR host:port', [{ name: 'HTTP_ADDR', value: '0.0.0.0:29090' }], 29090],
    ['HTTP_ADDR [v6]:port', [{ name: 'HTTP_ADDR', value: '[::]:8125' }], 8125],
    ['HTTP_ADDR off: no listener, nothing to clash', [{ name: 'HTTP_ADDR', value: 'off' }], undefined],
    [
      'HTTP_ADDR from elsewhere: the default is the best guess',
      [{ name: 'HTTP_ADDR', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } }],
      9090,
    ],
    [
      'a malformed HTTP_ADDR: the agent would refuse it; the default',
      [{ name: 'HTTP_ADDR', value: 'nowhere' }],
      9090,
    ],
  ])('%s', (_desc, env, port) => {
    expect(listenerPort(agent(env))).toBe(port);
  });
});

describe('listenerConflict', () => {
  it('names the container that declares the port, init containers included', () => {
    expect(listenerConflict(pod([8080]), 29090)).toBeUndefined();
    expect(listenerConflict(pod([8080, 29090]), 29090)).toMatch(/container 'task' declares port 29090/);
    const init = pod([], {
      initContainers: [{ name: 'warmup', image: 'w', ports: [{ containerPort: 29090 }] }],
    });
    expect(listenerConflict(init, 29090)).toMatch(/container 'warmup'/);
    expect(listenerConflict(pod([], { hostNetwork: true }), 29090)).toMatch(/hostNetwork/);
  });
});

describe('withoutListener', () => {
  it('sets HTTP_ADDR=off (replacing the entry) and drops the port and the probes on it, by number or name', () => {
    const c = withoutListener(
      agent(
        [
          { name: 'HTTP_ADDR', value: '0.0.0.0:29090' },
          { name: 'LOG_LEVEL', value: 'info' },
        ],
        {
          ports: [
            { name: 'tes-hb-metrics', containerPort: 29090 },
            { name: 'other', containerPort: 7000 },
          ],
          livenessProbe: { httpGet: { path: '/healthz', port: 'tes-hb-metrics' } },
          readinessProbe: { tcpSocket: { port: 29090 } },
          startupProbe: { httpGet: { path: '/x', port: 7000 } },
        },
      ),
      29090,
    );
    expect(c.env).toEqual([
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'HTTP_ADDR', value: 'off' },
    ]);
    expect(c.ports).toEqual([{ name: 'other', containerPort: 7000 }]);
    expect(c.livenessProbe).toBeUndefined();
    expect(c.readinessProbe).toBeUndefined();
    expect(c.startupProbe).toEqual({ httpGet: { path: '/x', port: 7000 } });
  });
});

describe('withoutTakenPortName', () => {
  it('drops a port name another container uses, pointing a probe on that name at the number', () => {
    const mine = agent(undefined, {
      ports: [{ name: 'tes-hb-metrics', containerPort: 29090, protocol: 'TCP' }],
      livenessProbe: { httpGet: { path: '/healthz', port: 'tes-hb-metrics' } },
    });
    const taken: V1Pod = {
      spec: {
        containers: [{ name: 'task', image: 't', ports: [{ name: 'tes-hb-metrics', containerPort: 8000 }] }],
      },
    };
    const c = withoutTakenPortName(mine, taken);
    expect(c.ports).toEqual([{ containerPort: 29090, protocol: 'TCP' }]);
    expect(c.livenessProbe).toEqual({ httpGet: { path: '/healthz', port: 29090 } });
    expect(withoutTakenPortName(mine, pod([8000]))).toBe(mine);
  });
});
