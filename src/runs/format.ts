// Terminal output of `tes-heartbeat runs`: plain aligned tables, no colours.
import type { TaskRun, TaskRunSummary, TaskRunSummaryPagedItems } from '../tes/types.gen.ts';

const MAX_CELL = 48;

function cell(value: string | undefined): string {
  const flat = (value ?? '').replace(/\s+/g, ' ');
  return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function runsTable(items: readonly TaskRunSummary[]): string {
  if (items.length === 0) return 'no task runs\n';
  return table(
    ['ID', 'NAME', 'STATUS', 'CREATED', 'MODIFIED'],
    items.map((r) => [r.id ?? '', cell(r.name), r.status ?? '', r.timeCreated ?? '', r.timeModified ?? '']),
  );
}

/** The table, then where this page sits and how to get the next one. */
export function pageText(page: TaskRunSummaryPagedItems): string {
  const items = page.items ?? [];
  let out = runsTable(items);
  if (page.totalItemCount !== undefined) out += `\n${items.length} of ${page.totalItemCount} task runs`;
  if (page.nextPageToken) out += `; next page: --page-token ${page.nextPageToken}`;
  return `${out}\n`;
}

/** One run as `Field: value` lines, in the definition's order, absent fields left out. */
export function runText(run: TaskRun | TaskRunSummary): string {
  const rows: [string, string | undefined][] = [
    ['ID', run.id],
    ['Name', run.name],
    ['Description', run.description],
    ['Status', run.status],
    ['Status details', run.statusDetails],
    ['Version', run.taskVersionSummary?.version],
    ['ACL', run.acl?.length ? run.acl.join(', ') : undefined],
    ['Created', run.timeCreated],
    ['Modified', run.timeModified],
    ['Href', run.href],
  ];
  const present = rows.filter((r): r is [string, string] => r[1] !== undefined && r[1] !== '');
  const width = Math.max(...present.map(([k]) => k.length)) + 1;
  return `${present.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n')}\n`;
}
