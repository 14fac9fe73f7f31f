// podHardwareDetails: node labels with their fallbacks, and the 4 KiB bound
// kept by dropping whole parts, never by cutting the JSON.
import type { Container, Node, Pod } from '../../src/kube/types.ts';
import { describe, expect, it } from 'vitest';
import { HARDWARE_DETAILS_MAX_BYTES, hardwareDetails } from '../../src/heartbeat/hardware.ts';
import { loadNode, loadPod } from '../support/k8s-fixtures.ts';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const parsed = (text: string) => JSON.parse(text) as Record<string, unknown>;

function nodeWithLabels(labels: Record<string, string>): Node {
  const node = loadNode('eks-gpu');
  if (node.metadata) node.metadata.labels = labels;
  return node;
}

describe('hardwareDetails: what goes in', () => {
  it('a GKE node: accelerator label, Container-Optimized OS, gce attach limits in capacity', () => {
    const details = parsed(hardwareDetails(loadPod('running-native-agent'), loadNode('gke-t4'), ['main']));
    expect(details.node).toStrictEqual({
      instanceType: 'n1-standard-8',
      zone: 'europe-west4-b',
      region: 'europe-west4',
      accelerator: 'nvidia-tesla-t4',
      architecture: 'amd64',
      operatingSystem: 'linux',
      osImage: 'Container-Optimized OS from Google',
      kernelVersion: '6.1.112+',
      containerRuntimeVersion: 'containerd://1.7.24',
      kubeletVersion: 'v1.31.5-gke.1068000',
      capacity: {
        'attachable-volumes-gce-pd': '127',
        cpu: '8',
        'ephemeral-storage': '98831908Ki',
        'hugepages-1Gi': '0',
        'hugepages-2Mi': '0',
        memory: '30817088Ki',
        'nvidia.com/gpu': '1',
        pods: '110',
      },
      allocatable: {
        'attachable-volumes-gce-pd': '127',
        cpu: '7910m',
        'ephemeral-storage': '47060071478',
        'hugepages-1Gi': '0',
        'hugepages-2Mi': '0',
        memory: '26866496Ki',
        'nvidia.com/gpu': '1',
        pods: '110',
      },
    });
  });

  it.each([
    {
      desc: 'only the deprecated labels: they are used',
      labels: {
        'beta.kubernetes.io/instance-type': 'm5.large',
        'failure-domain.beta.kubernetes.io/zone': 'eu-west-1b',
        'failure-domain.beta.kubernetes.io/region': 'eu-west-1',
      },
      want: { instanceType: 'm5.large', zone: 'eu-west-1b', region: 'eu-west-1' },
    },
    {
      desc: 'both: the current labels win',
      labels: {
        'node.kubernetes.io/instance-type': 'm6i.large',
        'beta.kubernetes.io/instance-type': 'm5.large',
        'topology.kubernetes.io/zone': 'eu-west-1c',
        'failure-domain.beta.kubernetes.io/zone': 'eu-west-1b',
        'topology.kubernetes.io/region': 'eu-west-2',
        'failure-domain.beta.kubernetes.io/region': 'eu-west-1',
      },
      want: { instanceType: 'm6i.large', zone: 'eu-west-1c', region: 'eu-west-2' },
    },
    {
      desc: 'an empty current label falls back',
      labels: { 'node.kubernetes.io/instance-type': '', 'beta.kubernetes.io/instance-type': 'm5.large' },
      want: { instanceType: 'm5.large' },
    },
    { desc: 'no labels: none of them', labels: {}, want: {} },
    {
      desc: 'GPU feature discovery product label',
      labels: { 'nvidia.com/gpu.product': 'NVIDIA-A10G' },
      want: { accelerator: 'NVIDIA-A10G' },
    },
  ])('labels: $desc', ({ labels, want }) => {
    const node = parsed(hardwareDetails(loadPod('running-native-agent'), nodeWithLabels(labels), ['main']))
      .node as Record<string, unknown>;
    const {
      architecture,
      operatingSystem,
      osImage,
      kernelVersion,
      containerRuntimeVersion,
      kubeletVersion,
      capacity,
      allocatable,
      ...fromLabels
    } = node;
    expect(fromLabels).toStrictEqual(want);
    expect(architecture).toBe('amd64');
  });

  it('a node without status or labels adds an empty node part', () => {
    expect(parsed(hardwareDetails({}, { metadata: { name: 'n' } }, []))).toStrictEqual({
      containers: [],
      node: {},
    });
  });

  it('each watched container in order, with only what it sets; unwatched ones left out', () => {
    const pod = loadPod('istio-native-sidecar');
    const details = parsed(hardwareDetails(pod, undefined, ['istio-proxy', 'main']));
    expect(details).toStrictEqual({
      nodeName: 'ip-10-0-12-34.ec2.internal',
      qosClass: 'Burstable',
      containers: [
        {
          name: 'istio-proxy',
          requests: { cpu: '100m', memory: '128Mi' },
          limits: { cpu: '2', memory: '1Gi' },
        },
        {
          name: 'main',
          requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' },
          limits: { memory: '16Gi', 'nvidia.com/gpu': '1' },
        },
      ],
    });
  });

  it('a container without resources (BestEffort) is named alone', () => {
    const pod = loadPod('running-native-agent');
    const main = pod.spec?.containers[0] as Container;
    delete main.resources;
    if (pod.status) pod.status.qosClass = 'BestEffort';
    expect(parsed(hardwareDetails(pod, undefined, ['main']))).toStrictEqual({
      nodeName: 'ip-10-0-12-34.ec2.internal',
      qosClass: 'BestEffort',
      containers: [{ name: 'main' }],
    });
  });
});

/** A pod with `count` containers, each with long extended-resource names. */
function bigPod(count: number): { pod: Pod; names: string[] } {
  const containers: Container[] = Array.from({ length: count }, (_, i) => ({
    name: `step-${String(i).padStart(2, '0')}-variant-calling-and-annotation`,
    image: 'x',
    resources: {
      requests: {
        cpu: '250m',
        memory: '1Gi',
        'example.com/very-long-vendor-specific-accelerator-resource-name': '1',
        'hugepages-2Mi': '128Mi',
      },
      limits: { memory: '2Gi', 'example.com/very-long-vendor-specific-accelerator-resource-name': '1' },
    },
  }));
  const pod: Pod = {
    spec: { nodeName: 'ip-10-0-12-34.ec2.internal', containers },
    status: { qosClass: 'Burstable' },
  };
  return { pod, names: containers.map((c) => c.name) };
}

describe('hardwareDetails: at most 4 KiB', () => {
  it('40 containers with long resource names: within the bound, valid JSON, the first containers kept', () => {
    const { pod, names } = bigPod(40);
    const text = hardwareDetails(pod, loadNode('eks-gpu'), names);
    expect(bytes(text)).toBeLessThanOrEqual(HARDWARE_DETAILS_MAX_BYTES);
    const details = parsed(text);
    const kept = details.containers as { name: string }[];
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(40);
    expect(kept.map((c) => c.name)).toStrictEqual(names.slice(0, kept.length));
    expect(details.containersOmitted).toBe(40 - kept.length);
    // The node's allocatable goes first, its capacity stays while containers are trimmed.
    const node = details.node as Record<string, unknown>;
    expect(node.allocatable).toBeUndefined();
    expect(node.capacity).toStrictEqual(loadNode('eks-gpu').status?.capacity);
    expect(node.instanceType).toBe('g5.2xlarge');
    // As many containers as fit: one more would not.
    const oneMore = JSON.stringify({
      ...details,
      containers: names.slice(0, kept.length + 1).map(() => kept[0]),
    });
    expect(bytes(oneMore)).toBeGreaterThan(HARDWARE_DETAILS_MAX_BYTES);
  });

  it('is deterministic', () => {
    const { pod, names } = bigPod(40);
    expect(hardwareDetails(pod, loadNode('eks-gpu'), names)).toBe(
      hardwareDetails(pod, loadNode('eks-gpu'), names),
    );
  });

  it('a document that fits is sent whole', () => {
    const { pod, names } = bigPod(3);
    const details = parsed(hardwareDetails(pod, loadNode('eks-gpu'), names));
    expect((details.containers as unknown[]).length).toBe(3);
    expect(details.containersOmitted).toBeUndefined();
    expect((details.node as Record<string, unknown>).allocatable).toBeDefined();
  });

  it('drops allocatable alone when that suffices', () => {
    const node = loadNode('eks-gpu');
    const many = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`rdma.example.com/hca-shared-device-plugin-${i}`, '1000']),
    );
    if (node.status) {
      node.status.capacity = { ...node.status.capacity, ...many };
      node.status.allocatable = { ...node.status.allocatable, ...many };
    }
    const text = hardwareDetails(loadPod('running-native-agent'), node, ['main']);
    expect(bytes(text)).toBeLessThanOrEqual(HARDWARE_DETAILS_MAX_BYTES);
    const details = parsed(text);
    expect((details.containers as unknown[]).length).toBe(1);
    expect((details.node as Record<string, unknown>).capacity).toStrictEqual(node.status?.capacity);
    expect((details.node as Record<string, unknown>).allocatable).toBeUndefined();
  });

  it('counts UTF-8 bytes, not characters, and then drops the node software versions', () => {
    const node = loadNode('eks-gpu');
    // 2,100 characters but 4,200 bytes: fits by length, not by bytes.
    if (node.status?.nodeInfo) node.status.nodeInfo.osImage = 'é'.repeat(2100);
    const text = hardwareDetails(loadPod('running-native-agent'), node, ['main']);
    expect(bytes(text)).toBeLessThanOrEqual(HARDWARE_DETAILS_MAX_BYTES);
    expect(parsed(text)).toStrictEqual({
      nodeName: 'ip-10-0-12-34.ec2.internal',
      qosClass: 'Burstable',
      containers: [],
      containersOmitted: 1,
      node: {
        instanceType: 'g5.2xlarge',
        zone: 'us-east-1a',
        region: 'us-east-1',
        architecture: 'amd64',
        operatingSystem: 'linux',
      },
    });
  });

  it('drops the node entirely when even its identity is too long', () => {
    const node = nodeWithLabels({ 'node.kubernetes.io/instance-type': 'x'.repeat(5000) });
    const text = hardwareDetails(loadPod('running-native-agent'), node, ['main']);
    expect(parsed(text)).toStrictEqual({
      nodeName: 'ip-10-0-12-34.ec2.internal',
      qosClass: 'Burstable',
      containers: [],
      containersOmitted: 1,
    });
  });

  it('a single container too big on its own is left out, the rest kept', () => {
    const pod = loadPod('running-native-agent');
    const main = pod.spec?.containers[0] as Container;
    main.resources = { requests: { [`example.com/${'r'.repeat(4100)}`]: '1' } };
    const text = hardwareDetails(pod, loadNode('eks-gpu'), ['main']);
    expect(bytes(text)).toBeLessThanOrEqual(HARDWARE_DETAILS_MAX_BYTES);
    const details = parsed(text);
    expect(details.containers).toStrictEqual([]);
    expect(details.containersOmitted).toBe(1);
    expect((details.node as Record<string, unknown>).kubeletVersion).toBe('v1.31.2-eks-94953ac');
  });
});
