// The page's script, stylesheet and icon, served by the emulator itself (no
// external asset, no inline script or style: the Content-Security-Policy allows
// only 'self'). Kept as text here so the one bundle carries them.

/**
 * Every 2 s, fetches the server-rendered content of the page it is on
 * (`/` → `/ui/parts/runs`, `/ui/runs/ID` → `/ui/parts/runs/ID`) and swaps it in.
 * With `--token` it first asks for the token (or takes `#token=…` from the
 * address, then removes it from there), keeps it in sessionStorage and sends it as
 * the bearer; a 401 forgets it and asks again.
 */
export const SCRIPT = `'use strict';
(() => {
  const KEY = 'tes-heartbeat-emulator-token';
  const REFRESH_MS = 2000;
  const content = document.getElementById('content');
  const gate = document.getElementById('gate');
  const gateInput = document.getElementById('gate-token');
  const gateError = document.getElementById('gate-error');
  const refreshStatus = document.getElementById('refresh-status');
  const needsToken = document.body.dataset.auth === 'token';
  const part = location.pathname === '/' ? '/ui/parts/runs' : '/ui/parts' + location.pathname.slice('/ui'.length);
  let timer;

  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has('token')) {
    if (hash.get('token')) sessionStorage.setItem(KEY, hash.get('token'));
    hash.delete('token');
    const rest = hash.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }

  function askForToken(message) {
    clearTimeout(timer);
    content.replaceChildren();
    gateError.textContent = message;
    gate.hidden = false;
    gateInput.focus();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function refresh() {
    const token = sessionStorage.getItem(KEY);
    if (needsToken && !token) return askForToken('');
    if (document.hidden) return schedule();
    let response;
    let text;
    try {
      response = await fetch(part, {
        headers: token ? { authorization: 'Bearer ' + token } : {},
        cache: 'no-store',
        credentials: 'omit',
      });
      text = await response.text();
    } catch {
      refreshStatus.textContent = 'The emulator does not answer; retrying every 2 s.';
      refreshStatus.classList.add('stale');
      return schedule();
    }
    refreshStatus.textContent = '';
    refreshStatus.classList.remove('stale');
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      return askForToken(token ? 'The emulator refused that token.' : '');
    }
    gate.hidden = true;
    if (response.ok) {
      // Keep what the person is selecting (a run id to copy) until they are done.
      const selection = getSelection();
      if (!(selection && !selection.isCollapsed && content.contains(selection.anchorNode))) content.innerHTML = text;
    } else {
      let message = 'HTTP ' + response.status;
      try {
        message = JSON.parse(text).message || message;
      } catch {}
      const problem = document.createElement('p');
      problem.className = 'problem';
      problem.textContent = message;
      content.replaceChildren(problem);
    }
    schedule();
  }

  gate.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = gateInput.value.trim();
    gateInput.value = '';
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    gateError.textContent = '';
    gate.hidden = true;
    refresh();
  });

  if (needsToken) refresh();
  else schedule();
})();
`;

export const STYLE = `:root {
  --waiting: #e3a21a;
  --running: #2f74c0;
  --exited: #2e9a57;
  --failed: #d2423a;
  --final: #1d2430;
  --ink: #1d2430;
  --muted: #5b6575;
  --line: #dde2ea;
  --bg: #f6f8fb;
  color-scheme: light;
}
* { box-sizing: border-box; }
body {
  margin: 0;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
  color: var(--ink);
  background: var(--bg);
}
code, .id, .run-id, .time, .num { font-family: ui-monospace, "SFMono-Regular", Menlo, "DejaVu Sans Mono", monospace; font-size: 13px; }
a { color: #1f5fa8; }
.top {
  display: flex; align-items: baseline; gap: 16px;
  padding: 10px 24px; background: var(--ink); color: #fff;
}
.brand { color: #fff; font-weight: 600; text-decoration: none; font-size: 15px; }
.brand span { font-weight: 400; opacity: .75; }
.refresh-status { margin-left: auto; font-size: 13px; }
.refresh-status.stale { color: #ffb4ad; }
main, .gate, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
main { padding-top: 8px; min-height: 40vh; }
h1 { font-size: 20px; margin: 16px 0 12px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.count { font-size: 14px; color: var(--muted); font-weight: 400; margin-left: 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); background: #eef1f6; }
.num { text-align: right; }
.time, .id { white-space: nowrap; }
.age { color: var(--muted); margin-left: 6px; font-family: system-ui, sans-serif; font-size: 12px; }
.none, .empty, .note, .as-of { color: var(--muted); }
.as-of, footer { font-size: 12px; }
footer { color: var(--muted); padding-top: 16px; padding-bottom: 24px; }
.status {
  display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  background: #e4e7ec; color: #3b4453;
}
.status-running { background: #dcebfb; color: #1c548f; }
.status-completed { background: #daf2e2; color: #1d6b3b; }
.status-failed { background: #fbdedb; color: #9d241d; }
.status-timedout { background: #fdecc8; color: #7c5203; }
.status-aborted { background: #e9e1f5; color: #54357f; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
.details { white-space: pre-wrap; word-break: break-word; }
.crumbs { margin: 12px 0 0; }
.timeline { margin: 0; background: #fff; border: 1px solid var(--line); padding: 10px 12px; }
.lanes { width: 100%; height: auto; display: block; font-family: system-ui, sans-serif; }
.lane-name { font-size: 12px; fill: var(--ink); font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.lane-bg { fill: #f0f2f6; }
.lane-empty { font-size: 12px; fill: var(--muted); }
.seg-waiting { fill: var(--waiting); background: var(--waiting); }
.seg-running { fill: var(--running); background: var(--running); }
.seg-exited { fill: var(--exited); background: var(--exited); }
.seg-failed { fill: var(--failed); background: var(--failed); }
rect.seg { stroke: #fff; stroke-width: 1; }
.seg-label { font-size: 11px; fill: #fff; pointer-events: none; }
.seg-label.on-waiting { fill: #3a2a00; }
.beat-ticks { stroke: var(--muted); stroke-width: 1.2; }
.axis { stroke: #aab2c0; stroke-width: 1; }
.axis-label { font-size: 11px; fill: var(--muted); }
.final-marker line { stroke: var(--final); stroke-width: 2; stroke-dasharray: 4 3; }
.final-marker path { fill: var(--final); }
.final-marker text { font-size: 12px; font-weight: 600; fill: var(--final); }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 6px; font-size: 12px; color: var(--muted); }
.key { display: inline-flex; align-items: center; gap: 5px; }
.swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px; }
.final-swatch { width: 3px; height: 14px; background: var(--final); }
.tick-swatch { width: 1.5px; height: 12px; background: var(--muted); }
.gate { margin-top: 32px; max-width: 520px; background: #fff; border: 1px solid var(--line); padding: 8px 24px 16px; }
.gate[hidden] { display: none; }
.gate label { display: block; font-weight: 600; margin: 12px 0 4px; }
.gate input { width: 100%; padding: 6px 8px; font: inherit; }
.gate button { margin-top: 10px; padding: 6px 14px; font: inherit; }
.gate-error, .problem { color: #9d241d; }
`;

/** A heart on a pulse line. */
export const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path fill="#d2423a" d="M16 28 4 16a7 7 0 0 1 12-9 7 7 0 0 1 12 9z"/><path fill="none" stroke="#fff" stroke-width="2.2" stroke-linejoin="round" d="M5 16h6l2-4 3 8 2-5h9"/></svg>
`;
