// `tes-heartbeat demo --keep`: after the final heartbeat it prints the web page's
// address and keeps the emulator serving, with the run it just showed, until a
// signal ends it with the demo's own exit code.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, it } from 'vitest';
import { send } from '../support/emulator-http.ts';
import { CLI } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';

function startDemo() {
  const child = spawn(process.execPath, [CLI, 'demo', '--keep'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => {
    output.stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output.stderr += c.toString();
  });
  return { child, output };
}

it('prints the page of the run it just watched, serves it, and exits 0 on Ctrl-C (SIGINT)', async () => {
  const { child, output } = startDemo();
  try {
    const page = (await waitFor(
      () =>
        /^web page: (http:\/\/127\.0\.0\.1:\d+\/ui\/runs\/\S+) \(every run: (\S+)\/\)$/m.exec(output.stdout),
      25_000,
      'the web page line',
    )) as RegExpExecArray;
    const [, runPage, base] = page as unknown as [string, string, string];
    const runId = decodeURIComponent(runPage.slice(`${base}/ui/runs/`.length));
    expect(output.stdout).toContain(`run ${runId}: Completed`);
    expect(output.stdout).not.toContain('tes-heartbeat demo --keep');

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
    expect(output.stderr).toBe('');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 30_000);

it('Ctrl-C while the demo still runs ends it there: it does not stay up for the page', async () => {
  const { child, output } = startDemo();
  try {
    await waitFor(() => output.stdout.includes('heartbeat #1'), 20_000, 'the first heartbeat');
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0); // the agent sent its final heartbeat and exited 0
    expect(output.stdout).toMatch(/agent exited with 0; run \S+: Failed/);
    expect(output.stdout).not.toContain('web page:');
    expect(output.stderr).toBe('');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 30_000);
