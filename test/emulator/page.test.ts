// The emulator's web page over plain HTTP (the browser test drives it in
// Chromium): routes and headers, the token gate, what the page never shows,
// escaping, and the lanes drawn from heartbeats (timeline.ts, pure).
import { afterEach, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/emulator/server.ts';
import { buildTimeline, readBeats } from '../../src/emulator/timeline.ts';
import { age, CONTENT_SECURITY_POLICY, LIST_LIMIT, utc } from '../../src/emulator/ui.ts';
import { send } from '../support/emulator-http.ts';
import { NONCE, RunSeeder } from '../support/emulator-runs.ts';
import { FakeClock } from '../support/fake-clock.ts';

const ADMIN = 'page-admin-token-5e2d';
const started: { emu: Emulator; clock: FakeClock }[] = [];

afterEach(async () => {
  for (const { emu, clock } of started.splice(0)) {
    const closed = emu.close();
    await clock.advance(10_000);
    await closed;
  }
});

async function emulator(options: EmulatorOptions = {}) {
  const clock = new FakeClock(Date.parse('2026-11-30T09:12:00Z'));
  const emu = await startEmulator({ clock, ...options });
  started.push({ emu, clock });
  const seeder = new RunSeeder(emu.url, clock, options.token);
  const get = (path: string, token?: string) => send(emu.url, path, token ? { token } : {});
  return { emu, clock, seeder, get };
}

const runPage = (id: string) => `/ui/runs/${encodeURIComponent(id)}`;
const runPart = (id: string) => `/ui/parts/runs/${encodeURIComponent(id)}`;

describe('routes and headers', () => {
  it('serves the page and its own script, style and icon, each under the strict CSP', async () => {
    const { get } = await emulator();
    for (const [path, type] of [
      ['/', 'text/html; charset=utf-8'],
      ['/ui/parts/runs', 'text/html; charset=utf-8'],
      ['/ui/app.js', 'text/javascript; charset=utf-8'],
      ['/ui/app.css', 'text/css; charset=utf-8'],
      ['/ui/favicon.svg', 'image/svg+xml'],
    ] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type'], path).toBe(type);
      expect(res.headers['content-security-policy'], path).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
    }
    expect(CONTENT_SECURITY_POLICY).toMatch(/^default-src 'none'; script-src 'self'; style-src 'self';/);
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    // The API's answers stay as they were.
    expect((await get('/v1/tasks/runs')).headers['content-security-policy']).toBeUndefined();
  });

  it('the HTML loads nothing from elsewhere and carries no inline script, style or handler', async () => {
    const { get, seeder } = await emulator();
    const { completed, pending } = await seeder.seed();
    for (const path of ['/', runPage(completed), runPage(pending), '/ui/parts/runs', runPart(completed)]) {
      const { text } = await get(path);
      expect(text, path).not.toMatch(/(src|href)="(?!\/)/); // only paths on our own origin
      expect(text, path).not.toMatch(/<script(?![^>]*\bsrc="\/ui\/app\.js")/);
      expect(text, path).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
    }
  });

  it('the page is GET only; a part of an unknown run is the API 404, its page a readable 404', async () => {
    const { get, emu } = await emulator();
    const post = await send(emu.url, '/', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect(post.json.code).toBe('MethodNotAllowed');
    const part = await get(runPart('nope'));
    expect(part.status).toBe(404);
    expect(part.json).toEqual({ code: 'RunNotFound', message: "no task run 'nope'", details: [] });
    const page = await get(runPage('nope'));
    expect(page.status).toBe(404);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('<p class="problem">no task run &#39;nope&#39;</p>');
  });

  it('ids with `/` and `:` are linked percent-encoded and found again', async () => {
    const { emu, get } = await emulator();
    emu.store.create({ name: 'odd' }, { id: 'runs/2026:a' });
    const list = await get('/ui/parts/runs');
    expect(list.text).toContain('href="/ui/runs/runs%2F2026%3Aa"');
    const page = await get('/ui/runs/runs%2F2026%3Aa');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<code class="run-id">runs/2026:a</code>');
  });
});

describe('the token gate', () => {
  it('with --token the page holds no run data; its parts need the admin token, or a run token for its run', async () => {
    const { get, seeder } = await emulator({ token: ADMIN });
    const runs = await seeder.seed();
    const shell = await get('/');
    const page = await get(runPage(runs.running));
    for (const res of [shell, page]) {
      expect(res.status).toBe(200);
      expect(res.text).toContain('<body data-auth="token">');
      expect(res.text).toContain('<main id="content" aria-live="polite"></main>');
      for (const id of [runs.completed, runs.failed, runs.running, runs.pending])
        expect(res.text).not.toContain(id);
      expect(res.text).not.toContain('GRCh38');
    }
    expect((await get('/ui/app.js')).status).toBe(200);

    expect((await get('/ui/parts/runs')).status).toBe(401);
    expect((await get('/ui/parts/runs', 'wrong')).status).toBe(401);
    expect((await get('/ui/parts/runs', runs.runningJwt)).status).toBe(401); // a run token lists nothing
    expect((await get('/ui/parts/runs', ADMIN)).text).toContain(runs.running);
    expect((await get(runPart(runs.running))).status).toBe(401);
    expect((await get(runPart(runs.running), runs.runningJwt)).text).toContain('index reference GRCh38');
    expect((await get(runPart(runs.failed), runs.runningJwt)).status).toBe(401);
    expect((await get(runPart(runs.failed), ADMIN)).status).toBe(200);
  });

  it('without --token the page is rendered with its runs in it', async () => {
    const { get, seeder } = await emulator();
    const runs = await seeder.seed();
    const shell = await get('/');
    expect(shell.text).toContain('<body data-auth="none">');
    expect(shell.text).toContain(`data-run-id="${runs.running}"`);
  });
});

describe('what the page shows', () => {
  it('never a nonce, a jwt or a token', async () => {
    const { get, seeder } = await emulator({ token: ADMIN });
    const runs = await seeder.seed();
    const texts = await Promise.all(
      [
        '/ui/parts/runs',
        ...Object.values(runs)
          .filter((v) => v.startsWith('trn.'))
          .map(runPart),
      ].map(async (path) => (await get(path, ADMIN)).text),
    );
    expect(texts.join('\n')).toContain('exit 137 (OOMKilled)');
    for (const secret of [NONCE, ADMIN, runs.runningJwt as string, 'eyJ'])
      expect(texts.join('\n')).not.toContain(secret);
  });

  it('names and container names are escaped', async () => {
    const { emu, get, seeder } = await emulator();
    const id = await seeder.create('<img src=x onerror="alert(1)">');
    await seeder.beat(id, [['"><script>alert(2)</script>', 'running']]);
    for (const path of ['/', runPage(id)]) {
      const { text } = await get(path);
      expect(text, path).not.toContain('<img src=x');
      expect(text, path).not.toContain('<script>alert');
    }
    expect((await get('/')).text).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect((await get(runPage(id))).text).toContain(
      'data-container="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"',
    );
    expect(emu.store.size).toBe(1);
  });

  it('lists runs newest first with the last heartbeat and its age; a run without heartbeats says so', async () => {
    const { get, seeder } = await emulator();
    const runs = await seeder.seed();
    const { text } = await get('/ui/parts/runs');
    const order = [...text.matchAll(/data-run-id="([^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual([runs.pending, runs.running, runs.failed, runs.completed]);
    expect(text).toContain('2026-11-30 09:20:10 <span class="age">35 s ago</span>');
    expect(text).toContain('<span class="none">none yet</span>');
    expect(text).toContain('As of 2026-11-30 09:20:45 UTC.');
    const pending = await get(runPart(runs.pending));
    expect(pending.text).toContain('No heartbeat yet');
    expect(pending.text).not.toContain('<svg');
  });

  it('a run that stops beating shows TimedOut with its details within the next refresh', async () => {
    const { get, seeder, clock } = await emulator({ heartbeatTimeoutMs: 60_000 });
    const runs = await seeder.seed();
    await clock.advance(30_000);
    const { text } = await get(runPart(runs.running));
    expect(text).toContain('<span class="status status-timedout">TimedOut</span>');
    expect(text).toContain('<span class="details">no heartbeat for 1m</span>');
    expect(text).not.toContain('final-marker');
  });

  it(`shows the newest ${LIST_LIMIT} runs and says how many there are`, async () => {
    const { emu, get } = await emulator();
    for (let i = 0; i <= LIST_LIMIT; i++) emu.store.create({ name: `run ${i}` }, { id: `run-${i}` });
    const { text } = await get('/ui/parts/runs');
    expect(text.match(/<tr data-run-id=/g)).toHaveLength(LIST_LIMIT);
    expect(text).toContain(`The newest ${LIST_LIMIT} of ${LIST_LIMIT + 1} runs`);
    expect(text).toContain(`data-run-id="run-${LIST_LIMIT}"`);
    expect(text).not.toContain('data-run-id="run-0"');
  });
});

describe('lanes from heartbeats', () => {
  const at = (s: number) => Date.parse('2026-11-30T10:00:00Z') + s * 1000;
  const beat = (s: number, containers: object[], final = false) => ({
    at: at(s),
    raw: JSON.stringify({ nonce: NONCE, containerStatus: containers, ...(final && { lastHeartbeat: true }) }),
  });
  const waiting = (name: string, reason?: string) => ({ name, state: { waiting: reason ? { reason } : {} } });
  const running = (name: string) => ({ name, state: { running: {} } });
  const exit = (name: string, exitCode: number, reason?: string) => ({
    name,
    state: { terminated: { exitCode, ...(reason && { reason }) } },
  });

  it.each([
    {
      desc: 'the same state merges; a change cuts; the last state lasts to the end',
      beats: [
        beat(0, [waiting('a', 'Pulling')]),
        beat(10, [running('a')]),
        beat(20, [running('a')]),
        beat(30, [exit('a', 0)], true),
      ],
      lanes: {
        a: [
          ['waiting', 'waiting: Pulling', 0, 10, 1, 1],
          ['running', 'running', 10, 30, 2, 3],
          ['exited', 'exit 0', 30, 40, 4, 4],
        ],
      },
    },
    {
      desc: 'a waiting reason that changes is a new segment; lanes keep the order they were first seen in',
      beats: [
        beat(0, [waiting('b'), waiting('a', 'Unschedulable')]),
        beat(5, [waiting('a', 'ContainerCreating'), waiting('b')]),
      ],
      lanes: {
        b: [['waiting', 'waiting', 0, 40, 1, 2]],
        a: [
          ['waiting', 'waiting: Unschedulable', 0, 5, 1, 1],
          ['waiting', 'waiting: ContainerCreating', 5, 40, 2, 2],
        ],
      },
    },
    {
      desc: 'a container no longer reported ends its segment; one without a state draws nothing',
      beats: [
        beat(0, [running('a'), running('b')]),
        beat(10, [running('a'), { name: 'b' }]),
        beat(20, [exit('a', 137, 'OOMKilled')], true),
      ],
      lanes: {
        a: [
          ['running', 'running', 0, 20, 1, 2],
          ['failed', 'exit 137 (OOMKilled)', 20, 40, 3, 3],
        ],
        b: [['running', 'running', 0, 10, 1, 1]],
      },
    },
    {
      desc: 'an unnamed container is named by its place',
      beats: [beat(0, [{ state: { running: {} } }])],
      lanes: { 'container #0': [['running', 'running', 0, 40, 1, 1]] },
    },
  ])('$desc', ({ beats, lanes }) => {
    const timeline = buildTimeline(readBeats(beats), at(40));
    const drawn = Object.fromEntries(
      timeline.lanes.map((lane) => [
        lane.container,
        lane.segments.map((s) => [
          s.state,
          s.label,
          (s.from - at(0)) / 1000,
          (s.to - at(0)) / 1000,
          s.firstBeat,
          s.lastBeat,
        ]),
      ]),
    );
    expect(Object.keys(drawn)).toEqual(Object.keys(lanes));
    expect(drawn).toEqual(lanes);
    expect(timeline.start).toBe(at(0));
  });

  it('keeps the final flag and the pod name, and nothing secret', () => {
    const [first] = readBeats([
      {
        at: at(0),
        raw: JSON.stringify({
          podName: 'p',
          nonce: NONCE,
          lastHeartbeat: true,
          podHardwareDetails: '{"x":1}',
        }),
      },
    ]);
    expect(first).toEqual({ n: 1, at: at(0), final: true, podName: 'p', containers: [] });
  });

  it('times in UTC and ages as a person says them', () => {
    expect(utc(Date.parse('2026-11-30T09:05:07.900Z'))).toBe('2026-11-30 09:05:07');
    expect([0, 59_999, 61_000, 3_600_000 + 125_000].map(age)).toEqual([
      '0 s ago',
      '59 s ago',
      '1 min 1 s ago',
      '1 h 2 min ago',
    ]);
  });
});
