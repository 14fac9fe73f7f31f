// The built `tes-heartbeat webhook` as a process: settings errors, the SIDECAR_* settings
// as the chart passes them, and SIGTERM while reviews are being received.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createConnection } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import { writeFile } from 'node:fs/promises';
import { podQosClass } from '../../src/webhook/qos.ts';
import {
  admissionReview,
  applyAnswer,
  fixtures,
  handshake,
  httpsClient,
  jobPod,
  readTls,
  review,
  sendOversized,
  tempDir,
  templateFile,
  tlsDir,
  validatePod,
  webhookEnv,
} from '../support/webhook-helpers.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function runCli(args: string[], env: Record<string, string>) {
  const { child, exited, stdout, stderr } = startCli('webhook', env, args);
  children.push(child);
  return { child, exited: exited.then(({ code }) => code), out: stdout, err: stderr };
}

/** The admission port the webhook logs once it listens. */
async function listeningPort(out: () => string): Promise<number> {
  const port = await waitFor(
    () => {
      const match = /"address":"127\.0\.0\.1:(\d+)"/.exec(out());
      return match ? Number(match[1]) : undefined;
    },
    10_000,
    'the webhook listening',
  );
  return port as number;
}

const baseEnv = webhookEnv;

describe('tes-heartbeat webhook (process)', () => {
  it('exits 2 with one plain line per bad setting', async () => {
    const run = runCli(['--sidecar-mode', 'sometimes'], {
      SIDECAR_TEMPLATE: path.join(tlsDir, 'ca.crt'), // not a Container
      WEBHOOK_ADDR: 'localhost',
      HTTP_ADDR: 'nowhere',
      AGENT_CONTAINER_NAME: 'Bad_Name',
    });
    expect(await run.exited).toBe(2);
    const lines = run.err().trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^tes-heartbeat webhook: SIDECAR_TEMPLATE \(--sidecar-template\): .*ca\.crt: /),
      expect.stringMatching(
        /^tes-heartbeat webhook: SIDECAR_MODE \(--sidecar-mode\): 'sometimes' is not one of/,
      ),
      expect.stringMatching(
        /^tes-heartbeat webhook: AGENT_CONTAINER_NAME \(--self\): 'Bad_Name' is not a container name/,
      ),
      expect.stringMatching(/^tes-heartbeat webhook: WEBHOOK_ADDR \(--addr\): /),
      'tes-heartbeat webhook: WEBHOOK_TLS_CERT (--tls-cert): required',
      'tes-heartbeat webhook: WEBHOOK_TLS_KEY (--tls-key): required',
      expect.stringMatching(/^tes-heartbeat webhook: HTTP_ADDR \(--http-addr\): /),
    ]);
    expect(run.out()).toBe('');
  });

  it('exits 2 naming SIDECAR_VOLUMES and SIDECAR_GUARANTEED_RESOURCES when they are unusable', async () => {
    const run = runCli(['--sidecar-guaranteed-resources', 'cpu=250m'], {
      ...baseEnv,
      SIDECAR_VOLUMES: templateFile, // a Container, not a list of Volumes
    });
    expect(await run.exited).toBe(2);
    expect(run.err().trim().split('\n')).toEqual([
      expect.stringMatching(
        /^tes-heartbeat webhook: SIDECAR_VOLUMES \(--sidecar-volumes\): .*sidecar\.yaml: does not hold a list of Volumes$/,
      ),
      'tes-heartbeat webhook: SIDECAR_GUARANTEED_RESOURCES (--sidecar-guaranteed-resources): needs both cpu and memory (e.g. cpu=250m,memory=192Mi)',
    ]);
  });

  it('lists the injection settings in --help', async () => {
    const run = runCli(['--help'], {});
    expect(await run.exited).toBe(0);
    for (const name of ['SIDECAR_VOLUMES', 'SIDECAR_GUARANTEED_RESOURCES', 'SIDECAR_IMAGE_PULL_SECRETS']) {
      expect(run.out()).toContain(name);
    }
  });

  it('injects with the SIDECAR_* settings as the chart sets them: volumes, pull secrets, a Guaranteed pod kept Guaranteed', async () => {
    const dir = await tempDir('webhook-process-');
    const volumesFile = path.join(dir, 'volumes.yaml');
    await writeFile(
      volumesFile,
      '- name: tes-heartbeat-tes-ca\n  configMap:\n    name: tes-heartbeat-tes-ca\n',
    );
    const run = runCli([], {
      ...baseEnv,
      SIDECAR_VOLUMES: volumesFile,
      SIDECAR_GUARANTEED_RESOURCES: 'cpu=250m,memory=192Mi',
      SIDECAR_IMAGE_PULL_SECRETS: 'corp-registry',
    });
    const port = await listeningPort(run.out);
    const client = await httpsClient();
    try {
      const pod = jobPod();
      const task = pod.spec?.containers[0];
      if (task)
        task.resources = { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } };
      const patched = applyAnswer(pod, await review(client, port, admissionReview(pod)));
      await validatePod(patched);
      expect(patched.spec?.volumes?.map((v) => v.name)).toEqual([
        'tes-heartbeat-tes-ca',
        'tes-heartbeat-kube-api-access',
      ]);
      expect(patched.spec?.imagePullSecrets).toEqual([{ name: 'corp-registry' }]);
      expect(podQosClass(patched)).toBe('Guaranteed');
      expect(patched.spec?.initContainers?.[0]?.resources?.requests).toEqual({
        cpu: '250m',
        memory: '192Mi',
      });
    } finally {
      await client.close();
    }
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it('exits 2 when the kubeconfig of auto mode cannot be loaded', async () => {
    const run = runCli([], { ...baseEnv, SIDECAR_MODE: 'auto', KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(await run.exited).toBe(2);
    expect(run.err()).toMatch(
      /^tes-heartbeat webhook: KUBECONFIG \(--kubeconfig\): cannot read \/nonexistent\/kubeconfig: ENOENT/,
    );
  });

  it('on SIGTERM answers the review being received, closes idle connections and exits 0', async () => {
    const run = runCli([], baseEnv);
    const port = await listeningPort(run.out);
    const ca = (await readTls('ca')).cert;
    const open = () =>
      new Promise<TLSSocket>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () =>
          resolve(socket),
        );
        socket.on('error', reject);
      });
    const collect = (socket: TLSSocket) => {
      let data = '';
      socket.on('data', (d) => {
        data += d;
      });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      return { text: () => data, closed };
    };
    const requestHead = (length: number) =>
      `POST /mutate?timeout=5s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

    // An idle keep-alive connection that has already been answered once.
    const idle = await open();
    const idleData = collect(idle);
    const warmup = JSON.stringify(admissionReview(jobPod()));
    idle.write(requestHead(Buffer.byteLength(warmup)) + warmup);
    await waitFor(() => idleData.text().includes('"allowed":true'), 5_000, 'the warm-up answer');

    // A review whose body is still arriving when SIGTERM comes.
    const body = JSON.stringify(admissionReview(jobPod()));
    const busy = await open();
    const busyData = collect(busy);
    busy.write(requestHead(Buffer.byteLength(body)) + body.slice(0, 100));
    await new Promise((r) => setTimeout(r, 200));
    const signalledAt = Date.now();
    run.child.kill('SIGTERM');

    await idleData.closed; // idle connection closed by the server
    await new Promise((r) => setTimeout(r, 200));
    busy.write(body.slice(100));
    await busyData.closed;
    const answer = busyData.text();
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toMatch(/"patchType":"JSONPatch"/);
    expect(answer.toLowerCase()).toContain('connection: close');

    expect(await run.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(8_000);
    // No longer accepting.
    await expect(open()).rejects.toThrow(/ECONNREFUSED/);
    expect(run.out()).toMatch(/"msg":"webhook stopped"/);
  });

  it('T8: stops reading a body at 3 MiB, refuses weak TLS, and cuts off a request that does not arrive whole within 10 s', async () => {
    // The chart's kind of key: RSA (helm's genSignedCert).
    const run = runCli([], {
      ...baseEnv,
      WEBHOOK_TLS_CERT: path.join(fixtures, 'webhook/server-rsa.crt'),
      WEBHOOK_TLS_KEY: path.join(fixtures, 'webhook/server-rsa.key'),
    });
    const port = await listeningPort(run.out);

    const total = 64 * 1024 * 1024;
    const sent = await sendOversized(port, total);
    expect(sent.finished).toBe(false);
    expect(sent.written).toBeLessThan(total);
    expect(sent.answer).toMatch(/^HTTP\/1\.1 413 /);

    for (const ciphers of ['AES128-SHA256', 'ECDHE-RSA-AES128-SHA']) {
      expect(await handshake(port, { ciphers, maxVersion: 'TLSv1.2' }), ciphers).toBeInstanceOf(Error);
    }
    expect(
      await handshake(port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    ).toBeInstanceOf(Error);
    expect(await handshake(port, { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' })).toEqual({
      protocol: 'TLSv1.2',
      cipher: 'ECDHE-RSA-AES128-GCM-SHA256',
    });

    // The real 10 s, once: a client that stops mid-body, one that stops mid-headers, and one
    // that never finishes its TLS handshake (a bare TCP connection). Each is cut off.
    const ca = (await readTls('ca')).cert;
    const stalled = (head: string) =>
      new Promise<{ answer: string }>((resolve, reject) => {
        let answer = '';
        const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () =>
          socket.write(head),
        );
        socket.on('data', (d: Buffer) => {
          answer += d.toString('latin1');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve({ answer }));
      });
    const body = JSON.stringify(admissionReview(jobPod()));
    const startedAt = Date.now();
    const bare = new Promise<void>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    const [midBody, midHeaders] = await Promise.all([
      stalled(
        `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
      ),
      stalled('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Le'),
      bare,
    ]);
    // Not before the contract's 10 s (the bound is on the request, not a shorter one).
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(9_500);
    expect(midBody.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(midHeaders.answer).toMatch(/^HTTP\/1\.1 408 /);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }, 30_000);
});
