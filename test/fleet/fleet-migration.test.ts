// Moving a cluster between modes while tasks run (docs/fleet.md, "Moving between modes"):
// the fleet can select the pods the launcher already labels for injection, and leaves
// every pod that carries an agent container to that agent — never two reporters.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus, RUNNING } from '../support/fake-kube-api.ts';
import { startCli } from '../support/agent-harness.ts';
import { fleetPod, fleetWorlds } from '../support/fleet-harness.ts';

const world = fleetWorlds();
const INJECT = { 'tes-heartbeat/inject': 'true' };

describe('sidecar → fleet', () => {
  it('a fleet selecting the injection label takes the new pods and leaves those with a sidecar to it', async () => {
    const w = await world();
    const { server } = w.kube;
    // A pod injected before the switch: its sidecar reports it.
    server.set(
      'pods',
      fleetPod({
        name: 'old',
        labels: INJECT,
        containers: ['main', 'tes-heartbeat'],
        status: {
          phase: 'Running',
          containerStatuses: [containerStatus('main', RUNNING), containerStatus('tes-heartbeat', RUNNING)],
        },
      }),
    );
    const sidecar = startCli('agent', {
      TES_URL: w.tes.url,
      TES_TOKEN: 'sidecar-token-111',
      TES_RUN_ID: 'run-old',
      POD_NAME: 'old',
      POD_NAMESPACE: 'tasks',
      KUBECONFIG: w.kube.kubeconfigPath,
      HEARTBEAT_INTERVAL: '300ms',
      HTTP_ADDR: 'off',
    });
    try {
      // After the switch: no webhook, so new pods come without a sidecar.
      server.set(
        'pods',
        fleetPod({
          name: 'new',
          labels: INJECT,
          status: { phase: 'Running', containerStatuses: [containerStatus('main', RUNNING)] },
        }),
      );
      const fleet = await w.fleet({
        TES_TOKEN: 'fleet-token-222',
        FLEET_SELECTOR: 'tes-heartbeat/inject=true',
        HEARTBEAT_INTERVAL: '300ms',
      });
      await waitFor(
        () => w.beats('run-new').length >= 3 && w.beats('run-old').length >= 3,
        10_000,
        'both reported',
      );
      const senders = (runId: string) =>
        new Set(w.tes.requests.filter((r) => r.runId === runId).map((r) => r.authorization));
      expect(senders('run-old')).toEqual(new Set(['Bearer sidecar-token-111']));
      expect(senders('run-new')).toEqual(new Set(['Bearer fleet-token-222']));
      expect(fleet.logs.some((l) => l.podName === 'old')).toBe(false);
      expect(server.events.created.filter((e) => e.reason === 'HeartbeatSkipped')).toHaveLength(0);
    } finally {
      sidecar.child.kill('SIGKILL');
      await sidecar.exited;
    }
  });
});
