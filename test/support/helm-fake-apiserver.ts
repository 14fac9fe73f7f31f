// Just enough of a Kubernetes API server (discovery + GET of stored objects) for
// `helm template --dry-run=server`, so that the chart's `lookup` sees an existing Secret.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { K8sObject } from './helm-chart.ts';

/** group/version → [kind, plural, namespaced] of what the chart renders. */
const RESOURCES: Record<string, [string, string, boolean][]> = {
  v1: [
    ['ConfigMap', 'configmaps', true],
    ['Secret', 'secrets', true],
    ['Service', 'services', true],
    ['ServiceAccount', 'serviceaccounts', true],
    ['Namespace', 'namespaces', false],
  ],
  'apps/v1': [['Deployment', 'deployments', true]],
  'batch/v1': [['Job', 'jobs', true]],
  'policy/v1': [['PodDisruptionBudget', 'poddisruptionbudgets', true]],
  'rbac.authorization.k8s.io/v1': [
    ['Role', 'roles', true],
    ['RoleBinding', 'rolebindings', true],
    ['ClusterRole', 'clusterroles', false],
    ['ClusterRoleBinding', 'clusterrolebindings', false],
  ],
  'admissionregistration.k8s.io/v1': [
    ['MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', false],
  ],
  'cert-manager.io/v1': [
    ['Issuer', 'issuers', true],
    ['Certificate', 'certificates', true],
  ],
};

export interface FakeApiServer {
  kubeconfig: string;
  requests: string[];
  close(): Promise<void>;
}

function resourceList(groupVersion: string) {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: (RESOURCES[groupVersion] ?? []).map(([kind, name, namespaced]) => ({
      name,
      singularName: kind.toLowerCase(),
      namespaced,
      kind,
      verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
    })),
  };
}

/** Starts the server on 127.0.0.1 port 0 and writes a kubeconfig for it into `dir`. */
export async function startFakeApiServer(dir: string, stored: K8sObject[]): Promise<FakeApiServer> {
  const requests: string[] = [];
  const groups = Object.keys(RESOURCES).filter((gv) => gv.includes('/'));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push(`${req.method} ${url.pathname}`);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const p = url.pathname;
    if (p === '/version') return send(200, { major: '1', minor: '31', gitVersion: 'v1.31.0' });
    if (p === '/api')
      return send(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (p === '/apis') {
      return send(200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: groups.map((gv) => {
          const [name, version] = gv.split('/') as [string, string];
          const v = { groupVersion: gv, version };
          return { name, versions: [v], preferredVersion: v };
        }),
      });
    }
    if (p === '/api/v1') return send(200, resourceList('v1'));
    const groupVersion = /^\/apis\/([^/]+\/[^/]+)$/.exec(p)?.[1];
    if (groupVersion && RESOURCES[groupVersion]) return send(200, resourceList(groupVersion));
    const found = stored.find((o) => {
      const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
      const plural = RESOURCES[o.apiVersion]?.find(([kind]) => kind === o.kind)?.[1];
      const ns = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : '';
      return req.method === 'GET' && p === `${base}${ns}/${plural}/${o.metadata.name}`;
    });
    if (found) return send(200, found);
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'fake', user: { token: 'fake' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }),
  );
  return {
    kubeconfig,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
