// Every shell script in the repository passes Debian's shellcheck; the kind scripts fail at
// once and clearly without their tools, and converge when run twice (against stub tools
// that record their calls: no Docker or kind here).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { repoRoot } from '../support/helm-chart.ts';

const KIND_SCRIPTS = ['up.sh', 'demo.sh', 'down.sh'];

function shellScripts(): string[] {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f !== '' && !f.startsWith('node_modules/'));
  return files.filter((f) => {
    if (f.endsWith('.sh')) return true;
    try {
      return /^#!.*\b(ba)?sh\b/.test(readFileSync(path.join(repoRoot, f), 'utf8').split('\n', 1)[0] ?? '');
    } catch {
      return false; // deleted in the work tree
    }
  });
}

function which(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

describe('shellcheck', () => {
  test('is installed (./dev test installs Debian shellcheck)', () => {
    expect(
      which('shellcheck'),
      'shellcheck is missing: apt-get install shellcheck, or run ./dev test',
    ).toBeDefined();
  });

  test('finds the scripts', () => {
    expect(shellScripts()).toEqual(
      expect.arrayContaining(['dev', '.ci/run', ...KIND_SCRIPTS.map((s) => `deploy/kind/${s}`)]),
    );
  });

  test('passes on every shell script', () => {
    const result = spawnSync('shellcheck', ['--external-sources', ...shellScripts()], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(result.error).toBeUndefined();
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  test('fails on a broken script (the check can fail)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shellcheck-'));
    try {
      writeFileSync(path.join(dir, 'bad.sh'), '#!/usr/bin/env bash\nrm -rf $1/*\n');
      const result = spawnSync('shellcheck', [path.join(dir, 'bad.sh')], { encoding: 'utf8' });
      expect(result.status).not.toBe(0);
      expect(result.stdout).toContain('SC2086');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test.each(KIND_SCRIPTS)('deploy/kind/%s is strict (set -euo pipefail) and executable', (script) => {
  const text = readFileSync(path.join(repoRoot, 'deploy/kind', script), 'utf8');
  expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
  expect(text).toMatch(/^set -euo pipefail$/m);
  const mode = execFileSync('stat', ['-c', '%a', path.join(repoRoot, 'deploy/kind', script)], {
    encoding: 'utf8',
  });
  expect(Number.parseInt(mode, 8) & 0o111).not.toBe(0);
});

// The utilities the scripts use besides the four tools.
const BASICS = [
  'dirname',
  'sed',
  'grep',
  'tr',
  'od',
  'seq',
  'sleep',
  'cat',
  'printf',
  'mkdir',
  'touch',
  'rm',
  'head',
  'base64',
];

let sandbox: string;
beforeEach(() => {
  sandbox = mkdtempSync(path.join(tmpdir(), 'kind-scripts-'));
});
afterEach(() => {
  rmSync(sandbox, { recursive: true, force: true });
});

/** A bin directory with the basic utilities and, optionally, stub tools. */
function binDir(stubs: Record<string, string>): string {
  const bin = path.join(sandbox, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const tool of BASICS) {
    const real = which(tool);
    if (real) symlinkSync(real, path.join(bin, tool));
  }
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(path.join(bin, name), `#!/bin/bash\necho "${name} $*" >> "$STUB_LOG"\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  }
  return bin;
}

function runScript(script: string, bin: string, args: string[] = []) {
  const result = spawnSync('/bin/bash', [path.join(repoRoot, 'deploy/kind', script), ...args], {
    encoding: 'utf8',
    env: { PATH: bin, STUB_LOG: path.join(sandbox, 'calls.log'), STATE: sandbox, HOME: sandbox },
    timeout: 30_000,
  });
  let calls: string[] = [];
  try {
    calls = readFileSync(path.join(sandbox, 'calls.log'), 'utf8').trim().split('\n');
  } catch {
    // no tool was called
  }
  rmSync(path.join(sandbox, 'calls.log'), { force: true });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, calls };
}

describe('missing tools', () => {
  test.each([
    ['up.sh', 'docker kind helm kubectl'],
    ['demo.sh', 'docker kind kubectl'],
    ['down.sh', 'docker kind'],
  ])('%s fails at once naming every missing tool (%s)', (script, missing) => {
    const result = runScript(script, binDir({}));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${script}: missing required command(s): ${missing}.`);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('up.sh names only what is missing, and does nothing else', () => {
    const result = runScript('up.sh', binDir({ docker: '', kind: '' }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('missing required command(s): helm kubectl.');
    expect(result.calls).toEqual([]);
  });
});

/** Stub tools that keep a little state in $STATE: enough for the scripts' control flow. */
const STUBS = {
  docker: 'exit 0',
  kind: `case "$1 $2" in
  "get clusters") [ -f "$STATE/cluster" ] && echo tes-heartbeat; exit 0 ;;
  "create cluster") touch "$STATE/cluster" ;;
  "delete cluster") rm -f "$STATE/cluster" ;;
esac`,
  helm: `case " $* " in
  *" status "*) [ -f "$STATE/release" ] ;;
  *" upgrade "*) touch "$STATE/release" ;;
esac`,
  kubectl: `case " $* " in
  *" create namespace "*) echo "apiVersion: v1" ;;
  *" apply -f - "*) cat >/dev/null ;;
  *" get secret "*"-o jsonpath={.data.token}"*) printf 'dGhlLWVtdWxhdG9yLXRva2Vu' ;;
  *" get deployment,daemonset "*) printf 'deployment.apps/tes-heartbeat-webhook\\ndaemonset.apps/tes-heartbeat-fleet\\n' ;;
  *" exec "*"runs create"*) printf '{\\n  "id": "run-42",\\n  "status": "Pending"\\n}\\n' ;;
  *" exec "*"runs get"*) printf '{"id":"run-42","name":"x","status":"Completed"}\\n' ;;
  *" create -f - "*) cat > "$STATE/job.yaml" ;;
  *" get pods "*) echo tes-heartbeat-demo-abcde ;;
  *" get pod "*) if [ -f "$STATE/fleet" ]; then echo " task"; else echo "tes-heartbeat task"; fi ;;
  *" logs "*) echo '{"msg":"final heartbeat sent","runId":"run-42"}' ;;
esac
exit 0`,
};

describe('with stub tools', () => {
  test('up.sh creates the cluster once, builds, loads and installs; a second run converges without re-creating', () => {
    const bin = binDir(STUBS);
    const first = runScript('up.sh', bin);
    expect(first.stderr).not.toContain('missing');
    expect(first.code).toBe(0);
    expect(first.calls.filter((c) => c.startsWith('kind create cluster'))).toHaveLength(1);
    expect(first.calls).toContainEqual(
      expect.stringMatching(/^docker build --tag tes-heartbeat:\d+\.\d+\.\d+/),
    );
    expect(first.calls).toContainEqual(
      expect.stringMatching(/^kind load docker-image tes-heartbeat:\S+ --name tes-heartbeat$/),
    );
    const install = first.calls.find((c) => c.includes(' upgrade --install '));
    expect(install).toContain('emulator.enabled=true');
    // Rule T3: tasks in a namespace of their own, named explicitly, not the release's.
    expect(install).toContain('taskNamespaces={tes-tasks}');
    expect(install).toContain('--namespace tes-heartbeat');
    expect(install).toContain('mode=sidecar');
    expect(install).toContain('--kube-context kind-tes-heartbeat');
    expect(first.calls.some((c) => c.includes('rollout restart'))).toBe(false);

    const second = runScript('up.sh', bin);
    expect(second.code).toBe(0);
    expect(second.calls.filter((c) => c.startsWith('kind create'))).toEqual([]);
    expect(second.calls.some((c) => c.includes('rollout restart deployment,daemonset'))).toBe(true);
    // Every workload of the release is waited for, the fleet's DaemonSet too.
    expect(second.calls).toContainEqual(
      expect.stringContaining('rollout status daemonset.apps/tes-heartbeat-fleet'),
    );
  });

  test('up.sh --fleet installs fleet mode; an unknown argument stops it before anything is done', () => {
    const bin = binDir(STUBS);
    const fleet = runScript('up.sh', bin, ['--fleet']);
    expect(fleet.code).toBe(0);
    const install = fleet.calls.find((c) => c.includes(' upgrade --install '));
    expect(install).toContain('mode=fleet');
    expect(install).toContain('taskNamespaces={tes-tasks}');
    expect(fleet.stderr).toContain('demo.sh --fleet');
    const wrong = runScript('up.sh', bin, ['--flet']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("unknown argument '--flet' (usage: up.sh [--sidecar|--fleet])");
    expect(wrong.calls).toEqual([]);
  });

  test('demo.sh creates a run, launches the injection example with its id and a nonce, and prints the final status', () => {
    writeFileSync(path.join(sandbox, 'cluster'), '');
    const result = runScript('demo.sh', binDir(STUBS));
    expect(result.stderr).toContain('run run-42 created');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('final heartbeat sent'); // the agent's log, followed
    expect(result.stdout.trim().split('\n').at(-1)).toBe('run run-42: Completed');
    expect(result.stderr).toContain(
      'kubectl --context kind-tes-heartbeat --namespace tes-heartbeat port-forward service/tes-heartbeat-emulator 8080:8080',
    );
    expect(result.stderr).toContain('http://127.0.0.1:8080/ui/runs/run-42');
    const job = readFileSync(path.join(sandbox, 'job.yaml'), 'utf8');
    expect(job).toContain('tes-heartbeat/inject: "true"');
    expect(job).toContain('tes-heartbeat/run-id: "run-42"');
    expect(job).toMatch(/tes-heartbeat\/nonce: "[0-9a-f]{16}"/);
    expect(job).toMatch(/^ {2}name: tes-heartbeat-demo$/m);
    expect(result.calls).toContainEqual(
      expect.stringContaining('delete job tes-heartbeat-demo --ignore-not-found'),
    );
    // Rule T7: the emulator wants its token, read from the chart's Secret.
    expect(
      result.calls.filter((c) => c.includes(' runs ')).every((c) => c.endsWith('--token the-emulator-token')),
    ).toBe(true);
  });

  test('demo.sh --fleet launches the fleet example (the fleet label, nothing of ours) and prints the fleet log lines of the run', () => {
    writeFileSync(path.join(sandbox, 'cluster'), '');
    writeFileSync(path.join(sandbox, 'fleet'), '');
    const result = runScript('demo.sh', binDir(STUBS), ['--fleet']);
    expect(result.stderr).toContain('carries nothing of ours');
    expect(result.code).toBe(0);
    const job = readFileSync(path.join(sandbox, 'job.yaml'), 'utf8');
    expect(job).toContain('tes-heartbeat/fleet: "true"');
    expect(job).not.toContain('tes-heartbeat/inject');
    expect(job).toContain('tes-heartbeat/run-id: "run-42"');
    expect(job).toMatch(/^ {2}name: tes-heartbeat-demo$/m);
    expect(result.stdout).toContain('"runId":"run-42"');
    expect(result.stdout.trim().split('\n').at(-1)).toBe('run run-42: Completed');
  });

  test('demo.sh --fleet stops when the pod got an injected agent (the chart is in sidecar mode)', () => {
    writeFileSync(path.join(sandbox, 'cluster'), '');
    const result = runScript('demo.sh', binDir(STUBS), ['--fleet']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is the chart in fleet mode? (deploy/kind/up.sh --fleet)');
  });

  test('demo.sh stops with a clear message without a cluster', () => {
    const result = runScript('demo.sh', binDir(STUBS));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("no kind cluster named 'tes-heartbeat': run deploy/kind/up.sh first");
  });

  test('down.sh deletes the cluster, and a second run has nothing to do', () => {
    writeFileSync(path.join(sandbox, 'cluster'), '');
    const bin = binDir(STUBS);
    const first = runScript('down.sh', bin);
    expect(first.code).toBe(0);
    expect(first.calls).toContain('kind delete cluster --name tes-heartbeat');
    const second = runScript('down.sh', bin);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('nothing to do');
    expect(second.calls.some((c) => c.startsWith('kind delete'))).toBe(false);
  });
});
