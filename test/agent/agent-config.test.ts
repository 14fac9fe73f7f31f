// Every setting's bad values stop the built agent before it does anything: exit 2,
// one plain line per problem naming the variable, no stack trace, no request sent.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '../support/agent-harness.ts';
import { FaultTes } from '../support/fault-tes.ts';

let tes: FaultTes;
let dir: string;
let good: Record<string, string>;

beforeAll(async () => {
  tes = await new FaultTes().start();
  dir = await mkdtemp(path.join(tmpdir(), 'agent-config-'));
  await writeFile(path.join(dir, 'not-pem'), 'hello');
  good = {
    TES_URL: tes.url,
    TES_RUN_ID: 'run-1',
    POD_NAME: 'pod-1',
    POD_NAMESPACE: 'tasks',
    HTTP_ADDR: 'off',
  };
});

afterAll(async () => {
  await tes.close();
});

async function run(env: Record<string, string | undefined>, args: string[] = []) {
  const agent = startAgent({ ...good, ...env }, args);
  const { code } = await agent.exited;
  return { code, stderr: agent.stderr(), stdout: agent.stdout() };
}

describe('bad settings exit 2 with one line naming the variable', () => {
  it.each([
    { desc: 'TES_URL missing', env: { TES_URL: undefined }, line: 'TES_URL (--tes-url): required' },
    {
      desc: 'TES_URL not http(s)',
      env: { TES_URL: 'ftp://tes.example' },
      line: "TES_URL (--tes-url): 'ftp://tes.example' is not an http(s) URL",
    },
    { desc: 'TES_RUN_ID missing', env: { TES_RUN_ID: undefined }, line: 'TES_RUN_ID (--run-id): required' },
    { desc: 'TES_RUN_ID empty', env: { TES_RUN_ID: '' }, line: 'TES_RUN_ID (--run-id): must not be empty' },
    {
      desc: 'a bare number',
      env: { HEARTBEAT_INTERVAL: '30' },
      line: "HEARTBEAT_INTERVAL (--interval): '30' is not a duration",
    },
    {
      desc: 'interval below 100ms',
      env: { HEARTBEAT_INTERVAL: '99ms' },
      line: 'HEARTBEAT_INTERVAL (--interval): must be at least 100ms, got 99ms',
    },
    {
      desc: 'over 24h',
      env: { HEARTBEAT_INTERVAL: '24h1s' },
      line: 'HEARTBEAT_INTERVAL (--interval): must be at most 24h, got 24h1s',
    },
    {
      desc: 'timeout 0',
      env: { HEARTBEAT_TIMEOUT: '0s' },
      line: 'HEARTBEAT_TIMEOUT (--timeout): must be greater than 0, got 0s',
    },
    {
      desc: 'negative gap',
      env: { HEARTBEAT_MIN_GAP: '-1s' },
      line: "HEARTBEAT_MIN_GAP (--min-gap): '-1s' is not a duration",
    },
    {
      desc: 'final deadline 0',
      env: { FINAL_HEARTBEAT_DEADLINE: '0ms' },
      line: 'FINAL_HEARTBEAT_DEADLINE (--final-deadline): must be greater than 0, got 0ms',
    },
    {
      desc: 'job retry count not a number',
      env: { JOB_RETRY_COUNT: 'many' },
      line: "JOB_RETRY_COUNT (--job-retry-count): 'many' is not an integer",
    },
    {
      desc: 'job retry count negative',
      env: { JOB_RETRY_COUNT: '-1' },
      line: 'JOB_RETRY_COUNT (--job-retry-count): must be at least 0, got -1',
    },
    {
      desc: 'hardware details',
      env: { HARDWARE_DETAILS: 'on' },
      line: "HARDWARE_DETAILS (--hardware-details): 'on' is not one of auto, off",
    },
    {
      desc: 'listener address',
      env: { HTTP_ADDR: '9090' },
      line: "HTTP_ADDR (--http-addr): '9090' is not host:port or off",
    },
    { desc: 'log level', env: { LOG_LEVEL: 'loud' }, line: "LOG_LEVEL (--log-level): 'loud' is not one of" },
    {
      desc: 'log format',
      env: { LOG_FORMAT: 'xml' },
      line: "LOG_FORMAT (--log-format): 'xml' is not one of json, pretty",
    },
    {
      desc: 'token file unreadable',
      env: { TES_TOKEN_FILE: '/nonexistent/token' },
      line: 'TES_TOKEN_FILE (--token-file): cannot read /nonexistent/token: ENOENT',
    },
    {
      desc: 'CA file without a certificate',
      env: { TES_CA_FILE: 'DIR/not-pem' },
      line: 'TES_CA_FILE (--ca-file): DIR/not-pem holds no PEM certificate',
    },
    {
      desc: 'jwt file in a missing directory',
      env: { TES_JWT_FILE: '/nonexistent/dir/jwt' },
      line: 'TES_JWT_FILE (--jwt-file): directory /nonexistent/dir does not exist',
    },
    {
      desc: 'jwt file relative',
      env: { TES_JWT_FILE: 'jwt' },
      line: "TES_JWT_FILE (--jwt-file): 'jwt' is not an absolute path",
    },
    {
      desc: 'kubeconfig unreadable',
      env: { KUBECONFIG: '/nonexistent/kubeconfig' },
      line: 'KUBECONFIG (--kubeconfig): cannot read /nonexistent/kubeconfig: ENOENT',
    },
    {
      desc: 'no pod name and no HOSTNAME',
      env: { POD_NAME: undefined, HOSTNAME: undefined },
      line: 'POD_NAME (--pod-name): required',
    },
  ])('$desc', async ({ env, line }) => {
    const withDir = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v?.replace('DIR', dir)]),
    ) as Record<string, string | undefined>;
    const result = await run(withDir);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`tes-heartbeat agent: ${line.replace('DIR', dir)}`);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(result.stdout).toBe('');
  });

  it('reports every problem at once, and sends nothing', async () => {
    const result = await run({ HEARTBEAT_INTERVAL: '1', LOG_FORMAT: 'xml', TES_RUN_ID: undefined });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(3);
    expect(tes.requests).toHaveLength(0);
  });

  it('reports POD_NAME and POD_NAMESPACE problems together with the others', async () => {
    const result = await run({
      POD_NAME: undefined,
      HOSTNAME: undefined,
      POD_NAMESPACE: undefined,
      HEARTBEAT_INTERVAL: '1',
    });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const name of [
      'HEARTBEAT_INTERVAL (--interval)',
      'POD_NAME (--pod-name)',
      'POD_NAMESPACE (--namespace)',
    ])
      expect(lines.filter((line) => line.includes(name))).toHaveLength(1);
  });

  it('a TES_TOKEN a header cannot carry, even trimmed: exit 2, one line naming it, never the token', async () => {
    const secret = 'token-part-one\r\ntoken-part-two';
    const result = await run({ TES_TOKEN: `${secret}\n` });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('tes-heartbeat agent: TES_TOKEN (--token): ');
    for (const part of ['token-part-one', 'token-part-two']) expect(result.stderr).not.toContain(part);
    expect(result.stdout).toBe('');
    expect(tes.requests).toHaveLength(0);
  });

  it('rejects an unknown flag and a flag without a value', async () => {
    const unknown = await run({}, ['--intervall', '1s']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown flag --intervall');
    const missing = await run({}, ['--interval']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--interval needs a value');
  });

  it('lets the flag win over the environment variable', async () => {
    const result = await run({ HEARTBEAT_INTERVAL: '1s' }, ['--interval', '5']);
    expect(result.stderr).toContain("HEARTBEAT_INTERVAL (--interval): '5' is not a duration");
  });

  it('--help prints every setting with its default and exits 0', async () => {
    const result = await run({}, ['--help']);
    expect(result.code).toBe(0);
    for (const name of [
      'TES_URL',
      'HEARTBEAT_INTERVAL',
      'FINAL_HEARTBEAT_DEADLINE',
      'JOB_RETRY_COUNT',
      'HTTP_ADDR',
    ])
      expect(result.stdout).toContain(name);
    expect(result.stdout).toContain('default 30s');
  });
});
