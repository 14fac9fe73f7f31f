// The fleet's settings (contract: Fleet mode, Settings): the agent's declarations for
// the settings both share — one declaration per setting — plus the fleet's own. What
// the agent takes per process (run id, nonce, containers, Job retry count, jwt file)
// the fleet takes per pod, from its annotations (fleet/annotations.ts).
import { FLEET_LABEL } from '../kube/annotations.ts';
import { agentSettings, type SharedConfig, sharedConfig, whyNoFallback, withPodFallbacks } from './agent.ts';
import {
  commaList,
  duration,
  flagBoolean,
  integer,
  oneOf,
  Problem,
  type ParseResult,
  parseSettings,
  settingName,
  text,
} from './settings.ts';
import { cleartextTesUrlProblem } from './tes-url.ts';

/**
 * A standby's tries are spread over [1, 1.2] retry periods (fleet/lease-elector.ts).
 * client-go adds up to 1.2 periods instead (tries up to 2.2 periods apart); the narrower
 * spread keeps a takeover after a crash within lease duration + 2.4 retry periods: a
 * standby sees the leader's last change at most 1.2 periods late and retries at most 1.2
 * periods after it expired. FLEET_RENEW_DEADLINE is checked against it.
 */
export const LEASE_JITTER_FACTOR = 1.2;

export interface LeaseTimings {
  /** How long a standby waits after the record last changed before taking the lease (client-go: 15 s). */
  leaseDurationMs: number;
  /** How long a leader keeps acting without a successful renewal (client-go: 10 s). */
  renewDeadlineMs: number;
  /** Time between tries: a leader's renewals, a standby's reads (client-go: 2 s). */
  retryPeriodMs: number;
}

/**
 * What is wrong with these timings, one line each: client-go's ordering, duration >
 * deadline > retry × jitter (a deadline past the duration lets two leaders overlap).
 * The one rule for the settings and the elector's constructor; `name` says each timing
 * as its caller knows it (by default the setting: variable and flag).
 */
export function leaseTimingProblems(
  timings: LeaseTimings,
  name: (timing: keyof LeaseTimings) => string = (timing) => settingName(fleetSettings[timing]),
): string[] {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timings;
  const problems: string[] = [];
  if (!(retryPeriodMs > 0)) problems.push(`${name('retryPeriodMs')}: must be positive`);
  if (!(leaseDurationMs > renewDeadlineMs))
    problems.push(`${name('leaseDurationMs')}: must be longer than ${name('renewDeadlineMs')}`);
  if (!(renewDeadlineMs > retryPeriodMs * LEASE_JITTER_FACTOR))
    problems.push(
      `${name('renewDeadlineMs')}: must be longer than ${LEASE_JITTER_FACTOR} × ${name('retryPeriodMs')} (a standby's tries are jittered by up to that)`,
    );
  return problems;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const fleetSettings = {
  tesUrl: agentSettings.tesUrl,
  allowHttp: agentSettings.allowHttp,
  token: agentSettings.token,
  tokenFile: agentSettings.tokenFile,
  caFile: agentSettings.caFile,
  kubeconfig: agentSettings.kubeconfig,
  podName: {
    ...agentSettings.podName,
    help: "the fleet's own pod (the Events' reportingInstance, the Lease holder)",
  },
  namespace: { ...agentSettings.namespace, help: "the fleet's own namespace (the Lease's)" },
  intervalMs: agentSettings.intervalMs,
  timeoutMs: agentSettings.timeoutMs,
  minGapMs: agentSettings.minGapMs,
  finalDeadlineMs: agentSettings.finalDeadlineMs,
  selfName: {
    ...agentSettings.selfName,
    help: 'the agent container: never reported; a pod that has one is left to its sidecar',
  },
  hardwareDetails: agentSettings.hardwareDetails,
  events: { ...agentSettings.events, help: 'Events on the task pods: on or off' },
  httpAddr: agentSettings.httpAddr,
  nodeName: {
    env: 'FLEET_NODE_NAME',
    flag: 'node',
    help: 'per node: only pods bound to this node, no leader election (empty: per cluster)',
    default: '',
    defaultHelp: 'empty',
    parse: text,
  },
  namespaces: {
    env: 'FLEET_NAMESPACES',
    flag: 'namespaces',
    help: 'comma-separated namespaces of the task pods (empty: every namespace)',
    default: '',
    defaultHelp: 'empty',
    parse: namespaceList,
  },
  selector: {
    env: 'FLEET_SELECTOR',
    flag: 'selector',
    help: 'label selector of the task pods',
    default: `${FLEET_LABEL}=true`,
    parse: labelSelector,
  },
  lease: {
    env: 'FLEET_LEASE',
    flag: 'lease',
    help: 'per cluster: the Lease in POD_NAMESPACE whose holder sends',
    default: 'tes-heartbeat-fleet',
    parse: dnsSubdomain,
  },
  leaseDurationMs: {
    env: 'FLEET_LEASE_DURATION',
    flag: 'lease-duration',
    help: 'per cluster: how long an unrenewed lease stays taken',
    default: '15s',
    parse: duration({ positive: true }),
  },
  renewDeadlineMs: {
    env: 'FLEET_RENEW_DEADLINE',
    flag: 'renew-deadline',
    help: 'per cluster: a leader that has not renewed within this stops sending',
    default: '10s',
    parse: duration({ positive: true }),
  },
  retryPeriodMs: {
    env: 'FLEET_RETRY_PERIOD',
    flag: 'retry-period',
    help: 'per cluster: time between tries to take or renew the lease',
    default: '2s',
    parse: duration({ positive: true }),
  },
  maxInFlight: {
    env: 'FLEET_MAX_IN_FLIGHT',
    flag: 'max-in-flight',
    help: 'heartbeat requests in flight at once, over all runs (one run never holds more than one)',
    default: '64',
    parse: integer({ min: 1, max: 10_000 }),
  },
  finalizer: {
    env: 'FLEET_FINALIZER',
    flag: 'finalizer',
    help: 'hold deleted task pods with a finalizer until their final heartbeat: on or off',
    default: 'off',
    parse: oneOf(['on', 'off']),
  },
  finalizerTimeoutMs: {
    env: 'FLEET_FINALIZER_TIMEOUT',
    flag: 'finalizer-timeout',
    help: 'a pod whose deletion started longer ago is released even without a final heartbeat',
    default: '10m',
    parse: duration({ positive: true }),
  },
  nonceSecrets: {
    env: 'FLEET_NONCE_SECRETS',
    flag: 'nonce-secrets',
    help: "read the nonce from the Secret a pod's tes-heartbeat/nonce-secret annotation names: on or off",
    default: 'off',
    parse: oneOf(['on', 'off']),
  },
  releaseFinalizers: {
    flag: 'release-finalizers',
    help: "one-shot: remove the fleet's finalizer from every selected pod (marking unmarked ones failed), then exit",
    boolean: true,
    default: 'false',
    parse: flagBoolean,
  },
  logLevel: agentSettings.logLevel,
  logFormat: agentSettings.logFormat,
} as const;

export interface FleetConfig extends SharedConfig {
  namespace?: string;
  /** Per node when set; per cluster (leader election) when undefined. */
  nodeName?: string;
  /** Empty: every namespace. */
  namespaces: string[];
  selector: string;
  lease: { name: string; durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  maxInFlight: number;
  finalizer: boolean;
  finalizerTimeoutMs: number;
  nonceSecrets: boolean;
  releaseFinalizers: boolean;
}

export type FleetConfigResult =
  | { kind: 'ok'; config: FleetConfig }
  | Exclude<ParseResult<never>, { kind: 'ok' }>;

export function loadFleetConfig(argv: readonly string[], env: NodeJS.ProcessEnv): FleetConfigResult {
  const parsed = parseSettings(
    { ...fleetSettings, podName: { ...fleetSettings.podName, required: true as const } },
    argv,
    withPodFallbacks(env),
  );
  if (parsed.kind === 'help') return parsed;
  if (parsed.kind === 'invalid') return { kind: 'invalid', problems: parsed.problems.map(whyNoFallback) };
  const v = parsed.values;
  const problems: string[] = [];
  if (parsed.positionals.length > 0) problems.push(`unexpected argument '${parsed.positionals[0]}'`);
  const cleartext = cleartextTesUrlProblem(v.tesUrl, {
    bearer: Boolean(v.token || v.tokenFile),
    allowHttp: v.allowHttp,
  });
  if (cleartext) problems.push(cleartext);
  const perCluster = v.nodeName === '';
  if (perCluster && !v.releaseFinalizers) {
    problems.push(...leaseTimingProblems(v));
    if (!v.namespace)
      problems.push('POD_NAMESPACE (--namespace): required per cluster (the Lease lives there)');
  }
  if (problems.length > 0) return { kind: 'invalid', problems };
  return {
    kind: 'ok',
    config: {
      ...sharedConfig(v),
      ...(v.namespace ? { namespace: v.namespace } : {}),
      ...(perCluster ? {} : { nodeName: v.nodeName }),
      namespaces: v.namespaces,
      selector: v.selector,
      lease: {
        name: v.lease,
        durationMs: v.leaseDurationMs,
        renewDeadlineMs: v.renewDeadlineMs,
        retryPeriodMs: v.retryPeriodMs,
      },
      maxInFlight: v.maxInFlight,
      finalizer: v.finalizer === 'on',
      finalizerTimeoutMs: v.finalizerTimeoutMs,
      nonceSecrets: v.nonceSecrets === 'on',
      releaseFinalizers: v.releaseFinalizers,
    },
  };
}

function namespaceList(raw: string): string[] | Problem {
  const names = commaList(raw);
  const bad = names.filter((name) => !DNS_LABEL.test(name));
  return bad.length > 0 ? new Problem(`not namespace names: ${bad.join(', ')}`) : [...new Set(names)];
}

function dnsSubdomain(raw: string): string | Problem {
  const ok = raw.length <= 253 && raw.split('.').every((part) => DNS_LABEL.test(part));
  return ok ? raw : new Problem(`'${raw}' is not a valid object name`);
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/**
 * A label selector as kube-apiserver reads it (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
 * `k notin (a,b)`, `k`, `!k`), checked here so that a typo stops the fleet at once
 * (exit 2) instead of failing every LIST. Empty is refused: it would select every pod.
 */
function labelSelector(raw: string): string | Problem {
  const selector = raw.trim();
  if (selector === '') return new Problem('must not be empty (it would select every pod of the cluster)');
  const terms = selector.split(/,(?![^(]*\))/).map((term) => term.trim());
  for (const term of terms) {
    const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    const exists = /^!?([^=!\s()]+)$/.exec(term);
    const ok = set
      ? LABEL_KEY.test(set[1] ?? '') && commaList(set[3] ?? '').every((v) => LABEL_VALUE.test(v))
      : equality
        ? LABEL_KEY.test(equality[1] ?? '') && LABEL_VALUE.test(equality[3] ?? '')
        : exists !== null && LABEL_KEY.test(exists[1] ?? '');
    if (!ok) return new Problem(`'${raw}' is not a label selector (can't read '${term}')`);
  }
  return selector;
}
