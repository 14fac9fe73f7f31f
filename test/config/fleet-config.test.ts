// The fleet's settings (config/fleet.ts): the agent's declarations where they are shared,
// the fleet's own checked up front — every problem named, exit 2 before any request.
import { describe, expect, it } from 'vitest';
import { loadFleetConfig } from '../../src/config/fleet.ts';

const BASE = { TES_URL: 'https://tes.example', POD_NAME: 'fleet-a', FLEET_NODE_NAME: 'node-1' };
const problems = (env: Record<string, string>, argv: string[] = []) => {
  const loaded = loadFleetConfig(argv, { ...BASE, ...env });
  return loaded.kind === 'invalid' ? loaded.problems : [];
};

describe('fleet settings', () => {
  it('per node needs no POD_NAMESPACE and takes the defaults of the contract', () => {
    const loaded = loadFleetConfig([], BASE);
    expect(loaded.kind).toBe('ok');
    if (loaded.kind !== 'ok') return;
    expect(loaded.config).toMatchObject({
      nodeName: 'node-1',
      namespaces: [],
      selector: 'tes-heartbeat/fleet=true',
      maxInFlight: 64,
      finalizer: false,
      finalizerTimeoutMs: 600_000,
      nonceSecrets: false,
      intervalMs: 30_000,
      selfName: 'tes-heartbeat',
      events: true,
    });
  });

  it.each([
    {
      desc: 'an empty selector (every pod of the cluster)',
      env: { FLEET_SELECTOR: ' ' },
      named: 'FLEET_SELECTOR',
    },
    { desc: 'a selector with a space', env: { FLEET_SELECTOR: 'a b' }, named: 'FLEET_SELECTOR' },
    { desc: 'an unclosed set', env: { FLEET_SELECTOR: 'app in (a' }, named: 'FLEET_SELECTOR' },
    {
      desc: 'a namespace that is no name',
      env: { FLEET_NAMESPACES: 'tasks,Tasks_2' },
      named: 'FLEET_NAMESPACES',
    },
    { desc: 'no slot in flight', env: { FLEET_MAX_IN_FLIGHT: '0' }, named: 'FLEET_MAX_IN_FLIGHT' },
    {
      desc: 'a finalizer switch that is not on/off',
      env: { FLEET_FINALIZER: 'yes' },
      named: 'FLEET_FINALIZER',
    },
    {
      desc: 'a bare number as timeout',
      env: { FLEET_FINALIZER_TIMEOUT: '600' },
      named: 'FLEET_FINALIZER_TIMEOUT',
    },
  ])('refuses $desc, naming the variable', ({ env, named }) => {
    const found = problems(env);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${named} \\(--`));
  });

  it('accepts what kube-apiserver accepts: set-based, inequality and existence terms', () => {
    for (const selector of [
      'tes-heartbeat/inject=true',
      'a in (x, y),!b',
      'tier notin (db),env!=prod,team',
      'k==v',
    ]) {
      expect(problems({ FLEET_SELECTOR: selector }), selector).toEqual([]);
    }
  });

  it("takes no per-run setting of the agent's: those come from each pod's annotations", () => {
    expect(problems({}, ['--run-id', 'x'])).toEqual(['unknown flag --run-id']);
    expect(problems({}, ['--jwt-file', '/tmp/j'])).toEqual(['unknown flag --jwt-file']);
  });
});
