// The webhook's settings (contract: Sidecar injection, Settings and Serving).
import { readFileSync } from 'node:fs';
import type { V1Container, V1Volume } from '@kubernetes/client-node';
import {
  commaList,
  listenAddress,
  logSettings,
  nonEmpty,
  oneOf,
  Problem,
  type Setting,
} from '../config/settings.ts';
import { kubeconfigSetting } from '../config/kubeconfig.ts';
import { parseResourceList } from './qos.ts';
import { parseTemplate, parseVolumes, TemplateError } from './template.ts';

export const SIDECAR_MODES = ['auto', 'native', 'regular'] as const;

/** A file read and parsed once while the settings are checked; its problems named. */
function parsedFile<T>(
  raw: string,
  parse: (file: string, text: string) => T,
): { file: string; value: T } | Problem {
  if (raw === '') return new Problem('must not be empty');
  let content: string;
  try {
    content = readFileSync(raw, 'utf8');
  } catch (error) {
    return new Problem(`cannot read ${raw} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return { file: raw, value: parse(raw, content) };
  } catch (error) {
    if (error instanceof TemplateError) return new Problem(error.message);
    throw error;
  }
}

function templateFile(raw: string): { file: string; container: V1Container } | Problem {
  const parsed = parsedFile(raw, parseTemplate);
  return parsed instanceof Problem ? parsed : { file: parsed.file, container: parsed.value };
}

function volumesFile(raw: string): { file: string; volumes: V1Volume[] } | Problem {
  const parsed = parsedFile(raw, parseVolumes);
  return parsed instanceof Problem ? parsed : { file: parsed.file, volumes: parsed.value };
}

function resourceList(raw: string): Record<string, string> | Problem {
  const parsed = parseResourceList(raw);
  return typeof parsed === 'string' ? new Problem(parsed) : parsed;
}

/** A container name is a DNS-1123 label. */
function containerName(raw: string): string | Problem {
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(raw)
    ? raw
    : new Problem(`'${raw}' is not a container name (lowercase letters, digits and '-', at most 63)`);
}

function webhookAddress(raw: string) {
  const parsed = listenAddress(raw);
  return parsed === 'off' ? new Problem('the webhook cannot be turned off') : parsed;
}

export const webhookSpec = {
  template: {
    env: 'SIDECAR_TEMPLATE',
    flag: 'sidecar-template',
    help: 'YAML or JSON file holding the sidecar Container (re-read when it changes)',
    required: true,
    parse: templateFile,
  } satisfies Setting<{ file: string; container: V1Container }>,
  volumes: {
    env: 'SIDECAR_VOLUMES',
    flag: 'sidecar-volumes',
    help: "YAML or JSON file holding the pod volumes the sidecar's mounts need, added when a pod lacks them (re-read when it changes)",
    parse: volumesFile,
  } satisfies Setting<{ file: string; volumes: V1Volume[] }>,
  guaranteedResources: {
    env: 'SIDECAR_GUARANTEED_RESOURCES',
    flag: 'sidecar-guaranteed-resources',
    help: "the agent's requests = limits in a Guaranteed pod, e.g. cpu=250m,memory=192Mi",
    defaultHelp: "the template's limits",
    parse: resourceList,
  } satisfies Setting<Record<string, string>>,
  imagePullSecrets: {
    env: 'SIDECAR_IMAGE_PULL_SECRETS',
    flag: 'sidecar-image-pull-secrets',
    help: "comma-separated pull secrets for the agent's image, added to a pod that lacks them",
    parse: commaList,
  } satisfies Setting<string[]>,
  taskServiceAccounts: {
    env: 'TASK_SERVICE_ACCOUNTS',
    flag: 'task-service-accounts',
    help: 'comma-separated service accounts bound for the agent in task namespaces; others get a warning',
    default: 'tes-heartbeat',
    parse: commaList,
  } satisfies Setting<string[]>,
  sidecarMode: {
    env: 'SIDECAR_MODE',
    flag: 'sidecar-mode',
    help: 'auto (native while the API server and every kubelet are >= 1.29), native or regular',
    default: 'auto',
    parse: oneOf(SIDECAR_MODES),
  } satisfies Setting<(typeof SIDECAR_MODES)[number]>,
  self: {
    env: 'AGENT_CONTAINER_NAME',
    flag: 'self',
    help: 'name of the injected container; a pod that has it is left unchanged',
    default: 'tes-heartbeat',
    parse: containerName,
  } satisfies Setting<string>,
  kubeconfig: { ...kubeconfigSetting, help: `${kubeconfigSetting.help}; used in auto mode to watch nodes` },
  addr: {
    env: 'WEBHOOK_ADDR',
    flag: 'addr',
    help: 'HTTPS address of the admission endpoint (POST /mutate)',
    default: '0.0.0.0:8443',
    parse: webhookAddress,
  } satisfies Setting<{ host: string; port: number }>,
  tlsCert: {
    env: 'WEBHOOK_TLS_CERT',
    flag: 'tls-cert',
    help: 'PEM certificate file (re-read when it changes)',
    required: true,
    parse: nonEmpty,
  } satisfies Setting<string>,
  tlsKey: {
    env: 'WEBHOOK_TLS_KEY',
    flag: 'tls-key',
    help: 'PEM private key file (re-read when it changes)',
    required: true,
    parse: nonEmpty,
  } satisfies Setting<string>,
  httpAddr: {
    env: 'HTTP_ADDR',
    flag: 'http-addr',
    help: 'health and metrics listener (/healthz, /readyz, /metrics); off disables it',
    default: '0.0.0.0:9090',
    parse: listenAddress,
  } satisfies Setting<{ host: string; port: number } | 'off'>,
  ...logSettings,
};

export const WEBHOOK_USAGE = 'usage: tes-heartbeat webhook [flags]';
