// The emulator's read-only web page, rendered on the server: the page around the
// content (`renderPage`), and the two contents the page's script re-fetches every
// 2 s — the list of runs and one run with its heartbeats drawn as SVG lanes. Pure
// functions of the store's data and the time; times are shown in UTC. Nothing here
// reads a nonce, a jwt or hardware details (timeline.ts keeps only what is shown).
import { TERMINAL_STATUSES, type RunActivity } from './store.ts';
import { type Beat, buildTimeline, type LaneState, readBeats, type Timeline } from './timeline.ts';

/** The page's own script, stylesheet and icon: served from these paths, nothing from elsewhere. */
export const ASSET_PATHS = { script: '/ui/app.js', style: '/ui/app.css', icon: '/ui/favicon.svg' } as const;

/** Only our own origin, no inline script or style, no form posts, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The list shows at most this many runs, the newest (a long simulation makes tens of thousands). */
export const LIST_LIMIT = 1000;
const LATEST_BEATS = 10;

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** `2026-11-30 08:19:03`, always UTC. */
export function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** How long ago, as a person says it: `4 s ago`, `2 min 5 s ago`, `3 h 10 min ago`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s ago`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}

function statusBadge(status: string | undefined): string {
  const value = status ?? 'Unknown';
  return `<span class="status status-${value.toLowerCase().replace(/[^a-z]/g, '')}">${escapeHtml(value)}</span>`;
}

export function runPath(runId: string): string {
  return `/ui/runs/${encodeURIComponent(runId)}`;
}

/**
 * The whole page. With `auth` the server holds back every run: `content` must be
 * empty and the script asks for the token, then fetches the content itself.
 */
export function renderPage(options: { title: string; auth: boolean; content: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(options.title)} · tes-heartbeat emulator</title>
<link rel="icon" href="${ASSET_PATHS.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${ASSET_PATHS.style}">
<script src="${ASSET_PATHS.script}" defer></script>
</head>
<body data-auth="${options.auth ? 'token' : 'none'}">
<header class="top"><a class="brand" href="/">tes-heartbeat <span>emulator</span></a><span id="refresh-status" class="refresh-status" role="status"></span></header>
<form id="gate" class="gate" hidden>
<h1>This emulator needs a token</h1>
<p>Give the bearer token it was started with (<code>EMULATOR_TOKEN</code>, <code>--token-file</code> or <code>--token</code>). It is kept in this tab only (sessionStorage) and sent with the page's own requests; <code>#token=…</code> in the address works too.</p>
<label for="gate-token">Bearer token</label>
<input id="gate-token" name="token" type="password" autocomplete="off" spellcheck="false" required>
<button type="submit">Show runs</button>
<p id="gate-error" class="gate-error" role="alert"></p>
</form>
<main id="content" aria-live="polite">${options.content}</main>
<footer>Read-only. Refreshes every 2 s; times in UTC.</footer>
</body>
</html>
`;
}

/** The list of runs, newest first. */
export function renderRunList(list: { total: number; runs: RunActivity[] }, now: number): string {
  const shown =
    list.total > list.runs.length
      ? `<p class="note">The newest ${list.runs.length} of ${list.total} runs; <code>tes-heartbeat runs list --all</code> lists every one.</p>`
      : '';
  const rows = list.runs.map(({ run, heartbeats }) => {
    const id = run.id as string;
    const last = heartbeats.at(-1)?.at;
    const lastCell =
      last === undefined
        ? '<span class="none">none yet</span>'
        : `${utc(last)} <span class="age">${age(now - last)}</span>`;
    return `<tr data-run-id="${escapeHtml(id)}"><td class="id"><a href="${escapeHtml(runPath(id))}">${escapeHtml(id)}</a></td><td>${escapeHtml(run.name ?? '')}</td><td>${statusBadge(run.status)}</td><td class="time">${utc(Date.parse(run.timeCreated as string))}</td><td class="time">${lastCell}</td><td class="num heartbeats">${heartbeats.length}</td></tr>`;
  });
  const table =
    list.total === 0
      ? '<p class="empty">No task runs yet. Create one with <code>tes-heartbeat runs create --name demo --tes-url URL</code> (or <code>POST /v1/tasks/runs</code>); it appears here within 2 s.</p>'
      : `<table class="runs">
<thead><tr><th>Run</th><th>Name</th><th>Status</th><th>Created (UTC)</th><th>Last heartbeat (UTC)</th><th class="num">Heartbeats</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
  return `<h1>Task runs <span class="count">${list.total}</span></h1>
${shown}${table}
<p class="as-of">As of ${utc(now)} UTC.</p>`;
}

/** One run: its status, details, and its heartbeats as lanes over time. */
export function renderRun(activity: RunActivity, now: number): string {
  const { run, heartbeats } = activity;
  const beats = readBeats(heartbeats);
  const last = beats.at(-1);
  const facts = [
    ['Status', statusBadge(run.status)],
    ...(run.statusDetails
      ? [['Details', `<span class="details">${escapeHtml(run.statusDetails)}</span>`]]
      : []),
    ...(run.name ? [['Name', escapeHtml(run.name)]] : []),
    ...(run.description
      ? [['Description', `<span class="details">${escapeHtml(run.description)}</span>`]]
      : []),
    ['Created', `${utc(Date.parse(run.timeCreated as string))} UTC`],
    ['Modified', `${utc(Date.parse(run.timeModified as string))} UTC`],
    [
      'Heartbeats',
      last === undefined
        ? '<span class="beat-count">0</span>'
        : `<span class="beat-count">${beats.length}</span>, the last at ${utc(last.at)} UTC <span class="age">${age(now - last.at)}</span>`,
    ],
  ];
  const picture =
    last === undefined
      ? '<p class="empty">No heartbeat yet: the run is waiting for its agent.</p>'
      : `<figure class="timeline">${timelineSvg(buildTimeline(beats, timelineEnd(beats, run.status, now)))}
<figcaption class="legend">${legend()}</figcaption></figure>
<h2>Latest heartbeats</h2>
${latestTable(beats)}`;
  return `<p class="crumbs"><a href="/">← All runs</a></p>
<h1>Task run <code class="run-id">${escapeHtml(run.id as string)}</code></h1>
<dl class="facts">
${facts.map(([term, value]) => `<dt>${term}</dt><dd>${value}</dd>`).join('\n')}
</dl>
<h2>Heartbeats over time</h2>
${picture}
<p class="as-of">As of ${utc(now)} UTC.</p>`;
}

/** A run that ended stops at its last heartbeat; a live one runs to now. Either way the last state gets room. */
function timelineEnd(beats: Beat[], status: string | undefined, now: number): number {
  const first = (beats[0] as Beat).at;
  const last = (beats.at(-1) as Beat).at;
  const edge = TERMINAL_STATUSES.has(status ?? '') ? last : Math.max(now, last);
  return edge + Math.max((edge - first) * 0.1, 1_000);
}

const STATE_NAMES: Record<LaneState, string> = {
  waiting: 'waiting',
  running: 'running',
  exited: 'terminated, exit 0',
  failed: 'terminated, exit ≠ 0',
};

function legend(): string {
  const states = (Object.keys(STATE_NAMES) as LaneState[]).map(
    (state) => `<span class="key"><span class="swatch seg-${state}"></span>${STATE_NAMES[state]}</span>`,
  );
  return `${states.join('')}<span class="key"><span class="swatch final-swatch"></span>final heartbeat</span><span class="key"><span class="swatch tick-swatch"></span>a heartbeat</span>`;
}

function latestTable(beats: Beat[]): string {
  const rows = beats
    .slice(-LATEST_BEATS)
    .reverse()
    .map((beat) => {
      const containers =
        beat.containers.map((c) => `${escapeHtml(c.name)}: ${escapeHtml(c.label)}`).join('; ') ||
        '<span class="none">no container status (pod not read yet)</span>';
      return `<tr><td class="num">${beat.n}</td><td class="time">${utc(beat.at)}</td><td>${escapeHtml(beat.podName ?? '')}</td><td>${containers}</td><td>${beat.final ? '<strong>final</strong>' : ''}</td></tr>`;
    });
  return `<table class="beats">
<thead><tr><th class="num">#</th><th>Received (UTC)</th><th>Pod</th><th>Containers</th><th></th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

// The picture's geometry, in SVG user units (it scales to the page's width).
const WIDTH = 960;
const GUTTER = 150;
const RIGHT = 16;
const TOP = 28;
const LANE = 30;
const BAR = 20;
const AXIS_STEPS_MS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
].map((s) => s * 1000);

function timelineSvg(timeline: Timeline): string {
  const { start, end, beats, lanes } = timeline;
  const plot = WIDTH - GUTTER - RIGHT;
  const x = (t: number) => GUTTER + ((t - start) / Math.max(end - start, 1)) * plot;
  const f = (n: number) => n.toFixed(1);
  const rows = Math.max(lanes.length, 1);
  const ticksTop = TOP + rows * LANE + 6;
  const axisY = ticksTop + 20;
  const height = axisY + 24;
  const parts: string[] = [];

  lanes.forEach((lane, i) => {
    const y = TOP + i * LANE + (LANE - BAR) / 2;
    parts.push(
      `<text class="lane-name" x="${GUTTER - 8}" y="${f(y + BAR / 2 + 4)}" text-anchor="end">${escapeHtml(clip(lane.container, 20))}<title>${escapeHtml(lane.container)}</title></text>`,
      `<rect class="lane-bg" x="${GUTTER}" y="${f(y)}" width="${plot}" height="${BAR}"/>`,
    );
    for (const s of lane.segments) {
      const x0 = x(s.from);
      const width = Math.max(x(s.to) - x0, 1.5);
      const beatsText =
        s.firstBeat === s.lastBeat
          ? `heartbeat #${s.firstBeat}`
          : `heartbeats #${s.firstBeat}–#${s.lastBeat}`;
      parts.push(
        `<rect class="seg seg-${s.state}" data-container="${escapeHtml(lane.container)}" data-state="${s.state}" x="${f(x0)}" y="${f(y)}" width="${f(width)}" height="${BAR}"><title>${escapeHtml(`${lane.container}: ${s.label}, ${utc(s.from)} UTC (${beatsText})`)}</title></rect>`,
      );
      if (width >= s.short.length * 6.4 + 10)
        parts.push(
          `<text class="seg-label on-${s.state}" x="${f(x0 + 5)}" y="${f(y + BAR / 2 + 4)}">${escapeHtml(s.short)}</text>`,
        );
    }
  });
  if (lanes.length === 0)
    parts.push(
      `<text class="lane-empty" x="${GUTTER}" y="${TOP + LANE / 2 + 4}">no container status reported yet (the agent had not read the pod)</text>`,
    );

  parts.push(
    `<text class="lane-name" x="${GUTTER - 8}" y="${ticksTop + 10}" text-anchor="end">heartbeats</text>`,
    `<path class="beat-ticks" d="${beats.map((b) => `M${f(x(b.at))} ${ticksTop}v12`).join('')}"/>`,
    `<line class="axis" x1="${GUTTER}" x2="${WIDTH - RIGHT}" y1="${axisY}" y2="${axisY}"/>`,
  );
  const step = AXIS_STEPS_MS.find((s) => (end - start) / s <= 6) ?? 86_400_000;
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    const tx = f(x(t));
    parts.push(
      `<line class="axis" x1="${tx}" x2="${tx}" y1="${axisY}" y2="${axisY + 4}"/>`,
      `<text class="axis-label" x="${tx}" y="${axisY + 16}" text-anchor="middle">${utc(t).slice(11)}</text>`,
    );
  }
  // Clear of a tick label centred on the plot's left edge.
  parts.push(`<text class="axis-label" x="${GUTTER - 36}" y="${axisY + 16}" text-anchor="end">UTC</text>`);

  const last = beats.at(-1);
  if (last?.final) {
    const fx = x(last.at);
    const anchor = fx > GUTTER + 140 ? 'end' : 'start';
    parts.push(
      `<g class="final-marker" data-at="${new Date(last.at).toISOString()}"><line x1="${f(fx)}" x2="${f(fx)}" y1="${TOP - 8}" y2="${ticksTop + 14}"/><path d="M${f(fx)} ${ticksTop + 6}l5 6l-5 6l-5 -6z"/><text x="${f(anchor === 'end' ? fx - 6 : fx + 6)}" y="${TOP - 12}" text-anchor="${anchor}">final heartbeat #${last.n}, ${utc(last.at).slice(11)} UTC</text></g>`,
    );
  }
  const summary = `${lanes.length} container lane(s) over ${beats.length} heartbeat(s) from ${utc(start)} to ${utc(end)} UTC`;
  return `<svg class="lanes" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(summary)}" data-beats="${beats.length}" xmlns="http://www.w3.org/2000/svg">
${parts.join('\n')}
</svg>`;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
