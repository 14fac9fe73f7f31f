// `./dev bench`: every benchmark in turn, against the built dist/. Each prints its
// own JSON; README "Performance" quotes them. `--quick` shortens the agent's.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const here = import.meta.dirname;
const args = process.argv.slice(2);
let failed = false;
for (const script of [
  'bench-agent.ts',
  'bench-activity.ts',
  'bench-emulator.mjs',
  'bench-webhook.mjs',
  'bench-fleet.ts',
]) {
  process.stdout.write(`\n== ${script}\n`);
  const result = spawnSync(process.execPath, [path.join(here, script), ...args], { stdio: 'inherit' });
  failed ||= result.status !== 0;
}
process.exitCode = failed ? 1 : 0;
