// Quantities and the pod QoS class, as the API server and the kubelet compute them (rule I3).
import type { V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  guaranteedResources,
  parseQuantity,
  parseResourceList,
  podQosClass,
  sameQuantity,
} from '../../src/webhook/qos.ts';

describe('parseQuantity', () => {
  it.each([
    ['1', 1_000_000_000n],
    ['1000m', 1_000_000_000n],
    ['0.5', 500_000_000n],
    ['.5', 500_000_000n],
    ['250m', 250_000_000n],
    ['1Ki', 1024n * 1_000_000_000n],
    ['192Mi', 192n * 2n ** 20n * 1_000_000_000n],
    ['1e3', 1000n * 1_000_000_000n],
    ['1E-3', 1_000_000n],
    ['1.5Gi', 3n * 2n ** 29n * 1_000_000_000n],
    ['100n', 100n],
    ['1u', 1_000n],
    ['2k', 2_000n * 1_000_000_000n],
  ])('%s', (text, nano) => {
    expect(parseQuantity(text)).toBe(nano);
  });

  it.each(['', 'lots', '1mi', '1.2.3', '1 Gi', '--1', 'Gi'])('refuses %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });

  it('compares as quantities: 1 = 1000m, 1Gi = 1024Mi = 1073741824, 128974848 = 123Mi', () => {
    expect(sameQuantity('1', '1000m')).toBe(true);
    expect(sameQuantity('1Gi', '1024Mi')).toBe(true);
    expect(sameQuantity('1Gi', '1073741824')).toBe(true);
    expect(sameQuantity('128974848', '123Mi')).toBe(true);
    expect(sameQuantity('1G', '1Gi')).toBe(false);
    expect(sameQuantity('1', 1)).toBe(true);
  });
});

const res = (requests?: Record<string, string>, limits?: Record<string, string>): V1ResourceRequirements => ({
  ...(requests && { requests }),
  ...(limits && { limits }),
});
const pod = (containers: V1ResourceRequirements[], init: V1ResourceRequirements[] = []): V1Pod => ({
  spec: {
    containers: containers.map((resources, i) => ({ name: `c${i}`, image: 'x', resources })),
    ...(init.length > 0 && {
      initContainers: init.map((resources, i) => ({ name: `i${i}`, image: 'x', resources })),
    }),
  },
});
const both = (cpu: string, memory: string) => ({ cpu, memory });

describe('podQosClass (the kubelet GetPodQOS cases)', () => {
  it.each<[string, V1Pod, string]>([
    ['no resources at all', pod([res(), res()]), 'BestEffort'],
    ['zero requests count as none', pod([res({ cpu: '0', memory: '0' })]), 'BestEffort'],
    [
      'only ephemeral-storage',
      pod([res({ 'ephemeral-storage': '1Gi' }, { 'ephemeral-storage': '1Gi' })]),
      'BestEffort',
    ],
    ['one container, requests = limits', pod([res(both('1', '1Gi'), both('1', '1Gi'))]), 'Guaranteed'],
    [
      'equal as quantities, written differently',
      pod([res(both('1', '1Gi'), both('1000m', '1024Mi'))]),
      'Guaranteed',
    ],
    [
      'two containers, each requests = limits',
      pod([res(both('2', '4Gi'), both('2', '4Gi')), res(both('100m', '64Mi'), both('100m', '64Mi'))]),
      'Guaranteed',
    ],
    [
      'one container burstable',
      pod([res(both('2', '4Gi'), both('2', '4Gi')), res(both('10m', '64Mi'), both('1', '64Mi'))]),
      'Burstable',
    ],
    [
      'one container best effort beside a guaranteed one',
      pod([res(both('2', '4Gi'), both('2', '4Gi')), res()]),
      'Burstable',
    ],
    ['a cpu limit only is no memory limit', pod([res({ cpu: '1' }, { cpu: '1' })]), 'Burstable'],
    [
      'an init container counts',
      pod([res(both('1', '1Gi'), both('1', '1Gi'))], [res(both('10m', '16Mi'), both('1', '16Mi'))]),
      'Burstable',
    ],
    [
      'guaranteed init container too',
      pod([res(both('1', '1Gi'), both('1', '1Gi'))], [res(both('1', '1Gi'), both('1', '1Gi'))]),
      'Guaranteed',
    ],
    ['requests only', pod([res(both('1', '1Gi'))]), 'Burstable'],
    [
      'extended resources do not count',
      pod([
        res({ ...both('1', '1Gi'), 'nvidia.com/gpu': '1' }, { ...both('1', '1Gi'), 'nvidia.com/gpu': '1' }),
      ]),
      'Guaranteed',
    ],
  ])('%s → %s', (_desc, p, expected) => {
    expect(podQosClass(p)).toBe(expected);
  });

  it('pod-level resources decide when set', () => {
    const p = pod([res()]);
    (p.spec as unknown as Record<string, unknown>).resources = res(both('2', '4Gi'), both('2', '4Gi'));
    expect(podQosClass(p)).toBe('Guaranteed');
  });
});

describe('guaranteedResources and parseResourceList', () => {
  it('requests = limits from the template, or from the override', () => {
    const template = res(
      { cpu: '10m', memory: '96Mi', 'ephemeral-storage': '10Mi' },
      { cpu: '1', memory: '192Mi', 'ephemeral-storage': '50Mi' },
    );
    expect(guaranteedResources(template, undefined)).toEqual(
      res(
        { cpu: '1', memory: '192Mi', 'ephemeral-storage': '50Mi' },
        { cpu: '1', memory: '192Mi', 'ephemeral-storage': '50Mi' },
      ),
    );
    expect(guaranteedResources(template, { cpu: '250m', memory: '160Mi' })).toEqual(
      res(
        { cpu: '250m', memory: '160Mi', 'ephemeral-storage': '50Mi' },
        { cpu: '250m', memory: '160Mi', 'ephemeral-storage': '50Mi' },
      ),
    );
    expect(guaranteedResources(res({ cpu: '10m' }), undefined)).toBeUndefined();
  });

  it('parses cpu=…,memory=… and names what is wrong', () => {
    expect(parseResourceList('cpu=250m, memory=192Mi')).toEqual({ cpu: '250m', memory: '192Mi' });
    expect(parseResourceList('cpu=250m')).toMatch(/needs both cpu and memory/);
    expect(parseResourceList('cpu=lots,memory=1Gi')).toMatch(/cpu: 'lots' is not a positive quantity/);
    expect(parseResourceList('cpu=0,memory=1Gi')).toMatch(/cpu: '0' is not a positive quantity/);
    expect(parseResourceList('cpu:1,memory=1Gi')).toMatch(/'cpu:1' is not name=quantity/);
    expect(parseResourceList('cpu=1,cpu=2,memory=1Gi')).toMatch(/cpu is given twice/);
  });
});
