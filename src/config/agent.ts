// The agent's settings (contract: Agent settings), validated up front: a bad
// setting stops the agent before any network call, every problem named at once.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { bearerToken } from './credential.ts';
import { kubeconfigSetting } from './kubeconfig.ts';
import {
  commaList,
  duration,
  integer,
  listenAddress,
  logSettings,
  nonEmpty,
  oneOf,
  Problem,
  parseSettings,
  pemFile,
  type ParseResult,
  settingName,
  text,
  type Values,
} from './settings.ts';
import { cleartextTesUrlProblem, tesUrlSettings } from './tes-url.ts';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export const agentSettings = {
  tesUrl: tesUrlSettings.tesUrl,
  runId: {
    env: 'TES_RUN_ID',
    flag: 'run-id',
    required: true,
    help: 'the task run this pod executes',
    parse: nonEmpty,
  },
  nonce: { env: 'TES_NONCE', flag: 'nonce', help: 'echoed in every heartbeat (empty: omitted)', parse: text },
  token: { env: 'TES_TOKEN', flag: 'token', help: 'bearer token', parse: bearerToken },
  tokenFile: {
    env: 'TES_TOKEN_FILE',
    flag: 'token-file',
    help: 'bearer token read from a file; re-read when it changes and after a 401',
    parse: readableFile,
  },
  caFile: {
    env: 'TES_CA_FILE',
    flag: 'ca-file',
    help: 'extra PEM bundle trusted for the TES',
    parse: pemFile,
  },
  allowHttp: tesUrlSettings.allowHttp,
  jwtFile: {
    env: 'TES_JWT_FILE',
    flag: 'jwt-file',
    help: 'where the newest jwt from heartbeat responses is written (mode 0600)',
    parse: fileInExistingDirectory,
  },
  podName: {
    env: 'POD_NAME',
    flag: 'pod-name',
    help: 'own pod',
    defaultHelp: '$HOSTNAME',
    parse: nonEmpty,
  },
  namespace: {
    env: 'POD_NAMESPACE',
    flag: 'namespace',
    help: 'own namespace',
    defaultHelp: 'the service-account namespace file',
    parse: nonEmpty,
  },
  kubeconfig: kubeconfigSetting,
  intervalMs: {
    env: 'HEARTBEAT_INTERVAL',
    flag: 'interval',
    default: '30s',
    help: 'time between periodic heartbeats',
    parse: duration({ min: 100 }),
  },
  timeoutMs: {
    env: 'HEARTBEAT_TIMEOUT',
    flag: 'timeout',
    default: '10s',
    help: 'limit for one HTTP attempt',
    parse: duration({ positive: true }),
  },
  minGapMs: {
    env: 'HEARTBEAT_MIN_GAP',
    flag: 'min-gap',
    default: '1s',
    help: 'least time between two heartbeats triggered by pod changes',
    parse: duration({ min: 0 }),
  },
  finalDeadlineMs: {
    env: 'FINAL_HEARTBEAT_DEADLINE',
    flag: 'final-deadline',
    default: '10s',
    help: 'how long the final heartbeat may keep retrying',
    parse: duration({ positive: true }),
  },
  watchContainers: {
    env: 'WATCH_CONTAINERS',
    flag: 'containers',
    help: 'comma-separated container names to report',
    defaultHelp: "every regular container except the agent's own",
    parse: (raw: string) => (commaList(raw).length > 0 ? commaList(raw) : undefined),
  },
  selfName: {
    env: 'AGENT_CONTAINER_NAME',
    flag: 'self',
    default: 'tes-heartbeat',
    help: "the agent's own container, never reported",
    parse: nonEmpty,
  },
  jobRetryCount: {
    env: 'JOB_RETRY_COUNT',
    flag: 'job-retry-count',
    default: 'auto',
    help: "an integer, or auto: the owning Job's status.failed at start",
    parse: (raw: string) => (raw === 'auto' ? 'auto' : integer({ min: 0, max: 2 ** 31 - 1 })(raw)),
  },
  hardwareDetails: {
    env: 'HARDWARE_DETAILS',
    flag: 'hardware-details',
    default: 'auto',
    help: 'auto or off',
    parse: oneOf(['auto', 'off']),
  },
  httpAddr: {
    env: 'HTTP_ADDR',
    flag: 'http-addr',
    default: '0.0.0.0:9090',
    help: 'health and metrics listener, or off',
    parse: listenAddress,
  },
  events: {
    env: 'EVENTS',
    flag: 'events',
    default: 'on',
    help: 'Events on the own pod when heartbeats fail, recover and end: on or off',
    parse: oneOf(['on', 'off']),
  },
  ...logSettings,
} as const;

/** What the agent and the fleet take alike from the settings they share (one meaning for both). */
export interface SharedConfig {
  tesUrl: URL;
  token?: string;
  tokenFile?: { path: string; content: string };
  ca?: string;
  /** A KUBECONFIG value (config/kubeconfig.ts): files, `:`-separated, merged. */
  kubeconfig?: string;
  podName: string;
  intervalMs: number;
  timeoutMs: number;
  minGapMs: number;
  finalDeadlineMs: number;
  selfName: string;
  hardwareDetails: boolean;
  httpAddr: { host: string; port: number } | 'off';
  /** Record Events on the task pod (EVENTS). */
  events: boolean;
  logLevel: string;
  logFormat: 'json' | 'pretty';
}

type SharedKey =
  | 'tesUrl'
  | 'token'
  | 'tokenFile'
  | 'caFile'
  | 'kubeconfig'
  | 'intervalMs'
  | 'timeoutMs'
  | 'minGapMs'
  | 'finalDeadlineMs'
  | 'selfName'
  | 'hardwareDetails'
  | 'httpAddr'
  | 'events'
  | 'logLevel'
  | 'logFormat';

/** The shared settings' parsed values (POD_NAME required) as the agent and the fleet take them. */
export function sharedConfig(
  v: Pick<Values<typeof agentSettings>, SharedKey> & { podName: string },
): SharedConfig {
  return {
    tesUrl: v.tesUrl,
    ...(v.token ? { token: v.token } : {}),
    ...(v.tokenFile ? { tokenFile: v.tokenFile } : {}),
    ...(v.caFile ? { ca: v.caFile } : {}),
    ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}),
    podName: v.podName,
    intervalMs: v.intervalMs,
    timeoutMs: v.timeoutMs,
    minGapMs: v.minGapMs,
    finalDeadlineMs: v.finalDeadlineMs,
    selfName: v.selfName,
    hardwareDetails: v.hardwareDetails === 'auto',
    httpAddr: v.httpAddr,
    events: v.events === 'on',
    logLevel: v.logLevel,
    logFormat: v.logFormat,
  };
}

export interface AgentConfig extends SharedConfig {
  runId: string;
  nonce?: string;
  jwtFile?: string;
  namespace: string;
  watchContainers?: string[];
  jobRetryCount: number | 'auto';
}

export type AgentConfigResult =
  | { kind: 'ok'; config: AgentConfig }
  | Exclude<ParseResult<never>, { kind: 'ok' }>;

export function loadAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfigResult {
  const defaults = withPodFallbacks(env);
  // Required once the fallbacks are in: checked with every other setting, so that
  // all problems are reported in one run.
  const parsed = parseSettings(
    {
      ...agentSettings,
      podName: { ...agentSettings.podName, required: true as const },
      namespace: { ...agentSettings.namespace, required: true as const },
    },
    argv,
    defaults,
  );
  if (parsed.kind === 'help') return parsed;
  if (parsed.kind === 'invalid') return { kind: 'invalid', problems: parsed.problems.map(whyNoFallback) };
  const v = parsed.values;
  if (parsed.positionals.length > 0)
    return { kind: 'invalid', problems: [`unexpected argument '${parsed.positionals[0]}'`] };
  const cleartext = cleartextTesUrlProblem(v.tesUrl, {
    bearer: Boolean(v.token || v.tokenFile),
    allowHttp: v.allowHttp,
  });
  if (cleartext) return { kind: 'invalid', problems: [cleartext] };

  return {
    kind: 'ok',
    config: {
      ...sharedConfig(v),
      runId: v.runId,
      ...(v.nonce ? { nonce: v.nonce } : {}),
      ...(v.jwtFile ? { jwtFile: v.jwtFile } : {}),
      namespace: v.namespace,
      ...(v.watchContainers ? { watchContainers: v.watchContainers } : {}),
      jobRetryCount: v.jobRetryCount,
    },
  };
}

/** `env` with POD_NAME and POD_NAMESPACE falling back to what the pod provides anyway (the agent and the fleet). */
export function withPodFallbacks(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const defaults = { ...env };
  if (!defaults.POD_NAME && env.HOSTNAME) defaults.POD_NAME = env.HOSTNAME;
  if (!defaults.POD_NAMESPACE) {
    const fromFile = readIfPresent(SERVICE_ACCOUNT_NAMESPACE);
    if (fromFile) defaults.POD_NAMESPACE = fromFile;
  }
  return defaults;
}

/** A missing POD_NAME or POD_NAMESPACE also means its fallback was not there. */
export function whyNoFallback(problem: string): string {
  if (problem === `${settingName(agentSettings.podName)}: required`)
    return `${problem} (HOSTNAME is not set either)`;
  if (problem === `${settingName(agentSettings.namespace)}: required`)
    return `${problem} (${SERVICE_ACCOUNT_NAMESPACE} is not readable)`;
  return problem;
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function readableFile(raw: string): { path: string; content: string } | Problem {
  if (raw === '') return new Problem('must not be empty');
  try {
    return { path: raw, content: readFileSync(raw, 'utf8') };
  } catch (error) {
    return new Problem(`cannot read ${raw}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function fileInExistingDirectory(raw: string): string | Problem {
  if (raw === '') return new Problem('must not be empty');
  // Relative to whatever directory the container starts in is never what was meant.
  if (!path.isAbsolute(raw)) return new Problem(`'${raw}' is not an absolute path`);
  const dir = path.dirname(raw);
  try {
    if (statSync(dir).isDirectory()) return raw;
  } catch {
    // reported below
  }
  return new Problem(`directory ${dir} does not exist`);
}
