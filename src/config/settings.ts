// Settings for every command: each is an environment variable and a flag (the
// flag wins), declared once with its default and parser, so --help, validation
// and the typed result can't drift apart. Every problem is reported at once.
import { readFileSync } from 'node:fs';
import { formatDuration, parseDuration } from './duration.ts';

export interface Setting<T> {
  /** Environment variable, when the setting has one. */
  env?: string;
  /** Flag name without the dashes. */
  flag: string;
  help: string;
  /** Text used when neither env nor flag is given; absent means unset. */
  default?: string;
  /** Shown in --help instead of `default`, for computed defaults. */
  defaultHelp?: string;
  required?: boolean;
  /** A flag that takes no value (`--json`). */
  boolean?: boolean;
  /** A flag that may be given again and again (`--container a=running --container b=exit:0`): each is parsed, the value is the list. */
  repeatable?: boolean;
  /** The parsed value, or a Problem saying what is wrong with `raw`. */
  parse(raw: string): T | Problem;
}

export class Problem {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

type Spec = Record<string, Setting<unknown>>;
/** Parsed values: settings that are required or have a default are never undefined. */
export type Values<S extends Spec> = {
  [K in keyof S]: S[K] extends Setting<infer T>
    ? S[K] extends { repeatable: true }
      ? T[]
      : S[K] extends { required: true } | { default: string }
        ? T
        : T | undefined
    : never;
};

export type ParseResult<S extends Spec> =
  | { kind: 'ok'; values: Values<S>; positionals: string[] }
  | { kind: 'help' }
  | { kind: 'invalid'; problems: string[] };

export function settingName(s: Setting<unknown>): string {
  return s.env ? `${s.env} (--${s.flag})` : `--${s.flag}`;
}

/** Parses argv (without the command words) and env against `spec`. */
export function parseSettings<S extends Spec>(
  spec: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ParseResult<S> {
  const byFlag = new Map<string, [string, Setting<unknown>]>();
  for (const [key, s] of Object.entries(spec)) byFlag.set(s.flag, [key, s]);
  const problems: string[] = [];
  const fromFlags = new Map<string, string>();
  const repeated = new Map<string, string[]>();
  const positionals: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const entry = byFlag.get(name);
    if (!entry) {
      problems.push(`unknown flag --${name}`);
      continue;
    }
    const [key, s] = entry;
    if (s.repeatable) {
      const raw = eq !== -1 ? arg.slice(eq + 1) : i + 1 < argv.length ? (argv[++i] as string) : undefined;
      if (raw === undefined) problems.push(`--${name} needs a value`);
      else repeated.set(key, [...(repeated.get(key) ?? []), raw]);
    } else if (s.boolean) {
      fromFlags.set(key, eq === -1 ? 'true' : arg.slice(eq + 1));
    } else if (eq !== -1) {
      fromFlags.set(key, arg.slice(eq + 1));
    } else if (i + 1 < argv.length) {
      fromFlags.set(key, argv[++i] as string);
    } else {
      problems.push(`--${name} needs a value`);
    }
  }

  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    if (s.repeatable) {
      const list: unknown[] = [];
      for (const raw of repeated.get(key) ?? []) {
        const parsed = s.parse(raw);
        if (parsed instanceof Problem) problems.push(`${settingName(s)}: ${parsed.message}`);
        else list.push(parsed);
      }
      values[key] = list;
      continue;
    }
    const raw = fromFlags.get(key) ?? (s.env !== undefined ? env[s.env] : undefined) ?? s.default;
    if (raw === undefined) {
      if (s.required) problems.push(`${settingName(s)}: required`);
      continue;
    }
    const parsed = s.parse(raw);
    if (parsed instanceof Problem) problems.push(`${settingName(s)}: ${parsed.message}`);
    else values[key] = parsed;
  }
  if (problems.length > 0) return { kind: 'invalid', problems };
  return { kind: 'ok', values: values as Values<S>, positionals };
}

export function helpText(usage: string, spec: Spec): string {
  const rows = Object.values(spec).map((s) => {
    const flag = s.boolean ? `--${s.flag}` : `--${s.flag} <value>${s.repeatable ? ' (repeatable)' : ''}`;
    const def = s.defaultHelp ?? s.default;
    const tail = [
      s.env ? `env ${s.env}` : '',
      s.required ? 'required' : def !== undefined ? `default ${def}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return `  ${flag.padEnd(30)} ${s.help}${tail ? ` (${tail})` : ''}`;
  });
  return `${usage}\n\nSettings (the flag wins over the environment variable):\n${rows.join('\n')}\n`;
}

// Parsers shared by the commands.

export const text = (raw: string): string => raw;

export function nonEmpty(raw: string): string | Problem {
  return raw === '' ? new Problem('must not be empty') : raw;
}

export function httpUrl(raw: string): URL | Problem {
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  return new Problem(`'${raw}' is not an http(s) URL`);
}

export function duration(range: { min?: number; positive?: boolean; max?: number }) {
  const max = range.max ?? 24 * 3_600_000;
  return (raw: string): number | Problem => {
    const ms = parseDuration(raw);
    if (ms === undefined) return new Problem(`'${raw}' is not a duration (e.g. 500ms, 1.5s, 1m30s)`);
    if (range.positive && ms <= 0) return new Problem(`must be greater than 0, got ${raw}`);
    if (range.min !== undefined && ms < range.min)
      return new Problem(`must be at least ${formatDuration(range.min)}, got ${raw}`);
    if (ms > max) return new Problem(`must be at most ${formatDuration(max)}, got ${raw}`);
    return ms;
  };
}

export function integer(range: { min?: number; max?: number } = {}) {
  return (raw: string): number | Problem => {
    if (!/^-?\d+$/.test(raw)) return new Problem(`'${raw}' is not an integer`);
    const n = Number(raw);
    if (range.min !== undefined && n < range.min)
      return new Problem(`must be at least ${range.min}, got ${raw}`);
    if (range.max !== undefined && n > range.max)
      return new Problem(`must be at most ${range.max}, got ${raw}`);
    return n;
  };
}

export function oneOf<const T extends string>(choices: readonly T[]) {
  return (raw: string): T | Problem =>
    (choices as readonly string[]).includes(raw)
      ? (raw as T)
      : new Problem(`'${raw}' is not one of ${choices.join(', ')}`);
}

export function flagBoolean(raw: string): boolean | Problem {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return new Problem(`'${raw}' is not true or false`);
}

/** A PEM bundle of CA certificates (TES_CA_FILE): the file's content, which must hold a certificate. */
export function pemFile(raw: string): string | Problem {
  if (raw === '') return new Problem('must not be empty');
  let content: string;
  try {
    content = readFileSync(raw, 'utf8');
  } catch (error) {
    return new Problem(`cannot read ${raw}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return content.includes('-----BEGIN CERTIFICATE-----')
    ? content
    : new Problem(`${raw} holds no PEM certificate`);
}

export function commaList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `host:port`, `[v6]:port`, or `off`. */
export function listenAddress(raw: string): { host: string; port: number } | 'off' | Problem {
  if (raw === 'off') return 'off';
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[3]);
  if (!match || port > 65535) return new Problem(`'${raw}' is not host:port or off`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** LOG_LEVEL and LOG_FORMAT, the same for every long-running command. */
export const logSettings = {
  logLevel: {
    env: 'LOG_LEVEL',
    flag: 'log-level',
    default: 'info',
    help: 'pino level',
    parse: oneOf(LOG_LEVELS),
  },
  logFormat: {
    env: 'LOG_FORMAT',
    flag: 'log-format',
    default: 'json',
    help: 'json or pretty',
    parse: oneOf(['json', 'pretty'] as const),
  },
} as const;
