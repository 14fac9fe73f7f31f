// What the agent benchmarks share: the agent started as the image starts it (the
// Dockerfile's ENTRYPOINT flags and ENV), and its memory and CPU read from /proc.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..');
export const cli = process.env.BENCH_CLI ?? path.join(root, 'dist/tes-heartbeat.js');
export const tls = (name: string) => readFileSync(path.join(root, 'test/fixtures/tls', name), 'utf8');
const TICKS_PER_SECOND = 100; // Linux USER_HZ

const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
/** The node flags between the binary and the script in the image's ENTRYPOINT. */
export const imageFlags = process.env.BENCH_AGENT_FLAGS
  ? process.env.BENCH_AGENT_FLAGS.split(' ') // for trying other V8 flags
  : (JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1] ?? '[]') as string[]).slice(1, -1);
/** The image's ENV. */
export const imageEnv = Object.fromEntries(
  [...dockerfile.matchAll(/^\s*(?:ENV\s+)?([A-Z_]+)=(\S+?)\s*\\?$/gm)].map((m) => [
    m[1] as string,
    m[2] as string,
  ]),
);

/** Extra environment for trying runtime settings, e.g. BENCH_AGENT_ENV='{"MALLOC_ARENA_MAX":"1"}'. */
export const triedEnv: Record<string, string> = process.env.BENCH_AGENT_ENV
  ? (JSON.parse(process.env.BENCH_AGENT_ENV) as Record<string, string>)
  : {};

export function procStatus(pid: number): { rssMiB: number; rssAnonMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kb('VmRSS') / 1024, rssAnonMiB: kb('RssAnon') / 1024 };
}

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime + stime
}

export const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** The p-th percentile (nearest rank) of a sample. */
export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
};
