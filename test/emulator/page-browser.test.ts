// The emulator's web page in a real browser: Debian's Chromium driven by
// playwright-core (no browser download). The runs come from the API with a
// FakeClock stamping the heartbeats; the page refreshes on the browser's real
// 2 s timer. Every page here must log no console error, load nothing from
// beyond the emulator's origin, and run under the page's CSP (a violation is a
// console error). Screenshots are written as artefacts (the path is printed).
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/emulator/server.ts';
import { RunSeeder } from '../support/emulator-runs.ts';
import { FakeClock } from '../support/fake-clock.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(tmpdir(), 'tes-heartbeat-screenshots');
const ADMIN = 'page-admin-token-93c1';
/** The page's colours for the lane states (ui-assets.ts), as the browser computes them. */
const COLOURS = {
  waiting: 'rgb(227, 162, 26)',
  running: 'rgb(47, 116, 192)',
  exited: 'rgb(46, 154, 87)',
  failed: 'rgb(210, 66, 58)',
};

if (!HAVE_CHROMIUM)
  console.warn(
    `page-browser.test.ts: SKIPPED: ${CHROMIUM} is missing (./dev test installs Debian's chromium)`,
  );

interface Opened {
  page: Page;
  /** Console errors, page errors and requests to another origin, as they happen. */
  problems: string[];
  requests: string[];
}

describe.skipIf(!HAVE_CHROMIUM)('the emulator page in Chromium', () => {
  let browser: Browser;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    console.log(`emulator page screenshots: ${SCREENSHOTS}`);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function emulator(options: EmulatorOptions = {}) {
    const clock = new FakeClock(Date.parse('2026-11-30T09:12:00Z'));
    const emu = await startEmulator({ clock, ...options });
    cleanups.push(async () => {
      const closed = emu.close();
      await clock.advance(10_000); // the close's grace for connections still open
      await closed;
    });
    const seeder = new RunSeeder(emu.url, clock, options.token);
    return { emu, clock, seeder, runs: await seeder.seed() };
  }

  async function open(emu: Emulator, address: string): Promise<Opened> {
    const context = await browser.newContext({ viewport: { width: 1240, height: 560 } });
    cleanups.push(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(6_000); // a missing element fails in seconds, not at the test's timeout
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => {
      requests.push(request.url());
      if (new URL(request.url()).origin !== emu.url)
        problems.push(`request beyond the origin: ${request.url()}`);
    });
    const response = await page.goto(emu.url + address);
    expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
    return { page, problems, requests };
  }

  const shot = async (page: Page, name: string) => {
    const file = path.join(SCREENSHOTS, name);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };

  /** The list's rows as [id, name, status, heartbeats]. */
  const rows = (page: Page) =>
    page.$$eval('table.runs tbody tr', (trs) =>
      trs.map((tr) => {
        const cells = [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '');
        return [cells[0], cells[1], cells[2], cells[5]];
      }),
    );

  it('lists every run newest first with its status, and a new run and heartbeat appear without a reload', async () => {
    const { emu, clock, seeder, runs } = await emulator();
    const { page, problems, requests } = await open(emu, '/');
    expect(await rows(page)).toEqual([
      [runs.pending, 'qc report', 'Pending', '0'],
      [runs.running, 'index reference GRCh38', 'Running', '4'],
      [runs.failed, 'call variants chr20 (gatk)', 'Failed', '6'],
      [runs.completed, 'align NA12878 (bwa mem)', 'Completed', '10'],
    ]);
    expect(await page.textContent(`tr[data-run-id="${runs.running}"]`)).toContain('2026-11-30 09:20:10');
    await shot(page, 'emulator-runs.png');

    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await clock.advance(1_000);
    const fresh = await seeder.create('fresh run');
    await seeder.beat(runs.running, [['index', 'running']]);
    await page.waitForFunction(
      ([id, running]) =>
        document.querySelector('table.runs tbody tr')?.getAttribute('data-run-id') === id &&
        document.querySelector(`tr[data-run-id="${running}"] .heartbeats`)?.textContent === '5',
      [fresh, runs.running],
      { timeout: 6_000 },
    );
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    expect((await rows(page))[0]).toEqual([fresh, 'fresh run', 'Pending', '0']);
    expect(requests.filter((url) => url.endsWith('/ui/parts/runs')).length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('draws a run: one lane per container in the colour of each state, and the final heartbeat marked', async () => {
    const { emu, runs } = await emulator();
    const { page, problems } = await open(emu, `/ui/runs/${encodeURIComponent(runs.completed)}`);
    const lanes = await page.$$eval('svg.lanes rect.seg', (rects) =>
      rects.map((r) => [
        r.getAttribute('data-container'),
        r.getAttribute('data-state'),
        getComputedStyle(r).fill,
      ]),
    );
    expect(lanes).toEqual([
      ['align', 'waiting', COLOURS.waiting],
      ['align', 'waiting', COLOURS.waiting],
      ['align', 'running', COLOURS.running],
      ['align', 'exited', COLOURS.exited],
      ['upload', 'waiting', COLOURS.waiting],
      ['upload', 'waiting', COLOURS.waiting],
      ['upload', 'running', COLOURS.running],
      ['upload', 'exited', COLOURS.exited],
    ]);
    expect(await page.textContent('svg.lanes .final-marker')).toBe('final heartbeat #10, 09:16:25 UTC');
    expect(await page.textContent('.facts')).toContain('Completed');
    const file = await shot(page, 'emulator-run-completed.png');
    console.log(`run page screenshot: ${file}`);

    const failed = await open(emu, `/ui/runs/${encodeURIComponent(runs.failed)}`);
    const gatk = await failed.page.$$eval('svg.lanes rect.seg', (rects) =>
      rects.map((r) => [r.getAttribute('data-state'), getComputedStyle(r).fill]),
    );
    expect(gatk).toEqual([
      ['waiting', COLOURS.waiting],
      ['running', COLOURS.running],
      ['failed', COLOURS.failed],
    ]);
    expect(await failed.page.textContent('.facts .details')).toBe('gatk: exit code 137 (OOMKilled)');
    expect(await failed.page.textContent('svg.lanes')).toContain('exit 137 (OOMKilled)');
    await shot(failed.page, 'emulator-run-failed.png');
    expect([...problems, ...failed.problems]).toEqual([]);
  });

  it('a run page shows a new heartbeat, then the final one, without a reload', async () => {
    const { emu, clock, seeder, runs } = await emulator();
    const { page, problems } = await open(emu, `/ui/runs/${encodeURIComponent(runs.running)}`);
    expect(await page.getAttribute('svg.lanes', 'data-beats')).toBe('4');
    expect(await page.$('svg.lanes .final-marker')).toBeNull();
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await seeder.beat(runs.running, [['index', 'running']]);
    await page.waitForFunction(
      () => document.querySelector('svg.lanes')?.getAttribute('data-beats') === '5',
      null,
      {
        timeout: 6_000,
      },
    );
    await clock.advance(30_000);
    await seeder.beat(runs.running, [['index', 1]], { final: true });
    await page.waitForSelector('svg.lanes .final-marker', { timeout: 6_000 });
    expect(await page.textContent('.facts')).toContain('Failed');
    expect(await page.textContent('.facts .details')).toBe('index: exit code 1 (Error)');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    expect(problems).toEqual([]);

    // The emulator goes away (the demo's Ctrl-C): the page says so and keeps what it showed.
    const closed = emu.close();
    await clock.advance(10_000);
    await closed;
    await page.waitForSelector('#refresh-status.stale');
    expect(await page.textContent('#refresh-status')).toBe(
      'The emulator does not answer; retrying every 2 s.',
    );
    expect(await page.getAttribute('svg.lanes', 'data-beats')).toBe('6');
  });

  it('with --token: no run data without the token; #token= shows the runs and leaves the address', async () => {
    const { emu, runs } = await emulator({ token: ADMIN });
    const names = ['align NA12878', 'qc report', runs.completed, runs.running];

    const gated = await open(emu, '/');
    const parts: number[] = [];
    gated.page.on('response', (response) => {
      if (response.url().includes('/ui/parts/')) parts.push(response.status());
    });
    await gated.page.waitForSelector('#gate:not([hidden])');
    await shot(gated.page, 'emulator-token-gate.png');
    const html = await (await gated.page.request.get(emu.url)).text();
    for (const name of names) expect(html).not.toContain(name);
    expect(await gated.page.textContent('body')).not.toContain(runs.completed);

    await gated.page.fill('#gate-token', 'wrong-token');
    await gated.page.click('#gate button');
    await gated.page.waitForFunction(() => document.getElementById('gate-error')?.textContent !== '');
    expect(await gated.page.textContent('#gate-error')).toBe('The emulator refused that token.');
    expect(parts).toEqual([401]);
    expect(await gated.page.textContent('#content')).toBe('');
    expect(await gated.page.evaluate(() => sessionStorage.length)).toBe(0);
    // The refused token is logged as a failed load (a 401); nothing else may be.
    expect(gated.problems.filter((p) => !p.includes('401'))).toEqual([]);

    const allowed = await open(emu, `/#token=${ADMIN}`);
    await allowed.page.waitForSelector(`tr[data-run-id="${runs.completed}"]`);
    expect(await allowed.page.$eval('#gate', (gate) => (gate as HTMLFormElement).hidden)).toBe(true);
    expect(allowed.page.url()).toBe(`${emu.url}/`);
    await allowed.page.click(`tr[data-run-id="${runs.failed}"] a`);
    await allowed.page.waitForSelector('svg.lanes .final-marker');
    expect(await allowed.page.textContent('.facts .details')).toBe('gatk: exit code 137 (OOMKilled)');
    await shot(allowed.page, 'emulator-run-token.png');
    expect(allowed.problems).toEqual([]);
  });
});
