// `tes-heartbeat demo --keep`: after the final heartbeat it prints the web page's
// address and keeps the emulator serving, with the run it just showed, until a
// signal ends it with the demo's own exit code.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, it } from 'vitest';
import { send } from '../support/emulator-http.ts';
import { CLI } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';

it('prints the page of the run it just watched, serves it, and exits 0 on Ctrl-C (SIGINT)', async () => {
  const child = spawn(process.execPath, [CLI, 'demo', '--keep'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  try {
    const page = (await waitFor(
      () => /^web page: (http:\/\/127\.0\.0\.1:\d+\/ui\/runs\/\S+) \(every run: (\S+)\/\)$/m.exec(stdout),
      25_000,
      'the web page line',
    )) as RegExpExecArray;
    const [, runPage, base] = page as unknown as [string, string, string];
    const runId = decodeURIComponent(runPage.slice(`${base}/ui/runs/`.length));
    expect(stdout).toContain(`run ${runId}: Completed`);
    expect(stdout).not.toContain('tes-heartbeat demo --keep');

    const run = await send(base, new URL(runPage).pathname);
    expect(run.status).toBe(200);
    expect(run.text).toContain('<span class="status status-completed">Completed</span>');
    expect(run.text).toContain('data-container="task" data-state="exited"');
    expect(run.text).toContain('class="final-marker"');
    expect((await send(base, '/')).text).toContain(`data-run-id="${runId}"`);
    // Still serving a moment later: it waits for the signal, not for a timer.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(child.exitCode).toBeNull();

    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stderr).toBe('');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 30_000);
