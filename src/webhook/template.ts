// The sidecar template: a YAML or JSON file holding one Kubernetes Container,
// the same snippet the chart publishes for pods added by hand.
import type { V1Container, V1Volume } from '@kubernetes/client-node';
// js-yaml, not `yaml`: client-node already ships it, so the bundle holds one parser.
import { load } from 'js-yaml';

export class TemplateError extends Error {
  readonly code = 'SIDECAR_TEMPLATE_INVALID';
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options);
    this.name = 'TemplateError';
    this.file = file;
  }
}

/** Parses the template's text; throws TemplateError naming the file and the problem. */
export function parseTemplate(file: string, text: string): V1Container {
  const value = loadYaml(file, text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TemplateError(file, 'does not hold a Container (a YAML or JSON object)');
  }
  const container = value as Record<string, unknown>;
  if (typeof container.image !== 'string' || container.image === '') {
    throw new TemplateError(file, 'the Container has no image');
  }
  for (const field of ['env', 'envFrom', 'volumeMounts', 'ports', 'args', 'command'] as const) {
    if (container[field] !== undefined && !Array.isArray(container[field])) {
      throw new TemplateError(file, `the Container's ${field} is not a list`);
    }
  }
  if (
    Array.isArray(container.env) &&
    !container.env.every((e) => typeof e === 'object' && e !== null && typeof e.name === 'string')
  ) {
    throw new TemplateError(file, "the Container's env entries need a name");
  }
  return { ...container, name: typeof container.name === 'string' ? container.name : '' } as V1Container;
}

/** What every volume the webhook adds is named like (rule I1): it cannot collide with the task's. */
export const VOLUME_PREFIX = 'tes-heartbeat-';

/**
 * Parses the sidecar volumes file (SIDECAR_VOLUMES): a YAML or JSON list of pod Volumes,
 * each named `tes-heartbeat-…`, names unique. Empty text or `[]` is no volume.
 * Throws TemplateError naming the file and the problem.
 */
export function parseVolumes(file: string, text: string): V1Volume[] {
  const value = loadYaml(file, text);
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TemplateError(file, 'does not hold a list of Volumes');
  const names = new Set<string>();
  for (const [index, volume] of value.entries()) {
    if (typeof volume !== 'object' || volume === null || Array.isArray(volume)) {
      throw new TemplateError(file, `volume ${index} is not an object`);
    }
    const name = (volume as { name?: unknown }).name;
    if (typeof name !== 'string' || !name.startsWith(VOLUME_PREFIX)) {
      throw new TemplateError(file, `volume ${index}: its name must start with ${VOLUME_PREFIX}`);
    }
    if (names.has(name)) throw new TemplateError(file, `volume ${name} is listed twice`);
    names.add(name);
  }
  return value as V1Volume[];
}

/** The file's text as YAML (JSON is YAML: one parser reads both). */
function loadYaml(file: string, text: string): unknown {
  try {
    return load(text);
  } catch (error) {
    throw new TemplateError(file, `not YAML or JSON (${(error as Error).message.split('\n')[0]})`, {
      cause: error,
    });
  }
}
