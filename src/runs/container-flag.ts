// `runs heartbeat --container NAME=STATE`: one container's state as a TES ContainerStatus,
// so that a heartbeat sent by hand can report what the agent reports (the emulator fails a
// final heartbeat without any). STATE is `running`, `waiting[:REASON]` or
// `exit:CODE[:REASON]`; the times are the moment the flag is read (the state began, or the
// container finished, as far as this command knows).
import { Problem } from '../config/settings.ts';
import type { ContainerStatus } from '../tes/types.gen.ts';

export const CONTAINER_FLAG_FORM = 'NAME=running|waiting[:REASON]|exit:CODE[:REASON]';

const INT32_MAX = 2 ** 31 - 1;

/** A parser for one `--container` value, stamping times with `now` (epoch ms). */
export function containerFlag(now: () => number) {
  return (raw: string): ContainerStatus | Problem => {
    const bad = (why: string) => new Problem(`'${raw}' ${why} (${CONTAINER_FLAG_FORM})`);
    const eq = raw.indexOf('=');
    if (eq <= 0) return bad('names no container');
    const name = raw.slice(0, eq);
    const [kind = '', ...rest] = raw.slice(eq + 1).split(':');
    const at = new Date(now()).toISOString();
    switch (kind) {
      case 'running':
        if (rest.length > 0) return bad('has more after running');
        return { name, state: { running: { startedAt: at } } };
      case 'waiting': {
        const reason = rest.join(':');
        return { name, state: { waiting: reason ? { reason } : {} } };
      }
      case 'exit': {
        const [code = '', ...reasonParts] = rest;
        const exitCode = /^-?\d+$/.test(code) ? Number(code) : Number.NaN;
        if (!Number.isSafeInteger(exitCode) || Math.abs(exitCode) > INT32_MAX)
          return bad('has no integer exit code');
        const reason = reasonParts.join(':');
        return { name, state: { terminated: { exitCode, ...(reason && { reason }), finishedAt: at } } };
      }
      default:
        return bad(`has no state '${kind}'`);
    }
  };
}
