// `tes-heartbeat runs list|get|create|abort|heartbeat`: the TES client as a
// command against any TES. Tables for people, --json for machines. Exit 0 on
// success, 1 when the service (or the way to it) fails, 2 on a usage error.
import { readFileSync } from 'node:fs';
import { EXIT_OK, EXIT_USAGE, reportInvalid } from '../cli/exit.ts';
import { systemClock } from '../clock.ts';
import { bearerToken } from '../config/credential.ts';
import {
  commaList,
  duration,
  flagBoolean,
  helpText,
  integer,
  nonEmpty,
  Problem,
  pemFile,
  parseSettings,
  type Setting,
  text,
} from '../config/settings.ts';
import { cleartextTesUrlProblem, tesUrlSettings } from '../config/tes-url.ts';
import { isRecord } from '../json.ts';
import { Secrets } from '../secrets.ts';
import { TesClient } from '../tes/client.ts';
import { TesError } from '../tes/errors.ts';
import type {
  ContainerStatus,
  CreateTaskRunRequest,
  HeartbeatTaskRunRequest,
  ListTaskRunsQuery,
  TaskRunSummary,
} from '../tes/types.gen.ts';
import { CONTAINER_FLAG_FORM, containerFlag } from './container-flag.ts';
import { pageText, runText } from './format.ts';

const EXIT_SERVICE_ERROR = 1;

function jsonObjectFile(raw: string): Record<string, unknown> | Problem {
  let content: string;
  try {
    content = readFileSync(raw === '-' ? 0 : raw, 'utf8');
  } catch (error) {
    return new Problem(`cannot read '${raw}': ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    const value: unknown = JSON.parse(content);
    if (isRecord(value)) return value;
    return new Problem(`'${raw}' does not hold a JSON object`);
  } catch (error) {
    return new Problem(`'${raw}' is not JSON: ${(error as Error).message}`);
  }
}

const flag = (name: string, help: string) => ({ flag: name, help, parse: text });
const boolFlag = (name: string, help: string) => ({
  flag: name,
  help,
  boolean: true,
  default: 'false',
  defaultHelp: 'off',
  parse: flagBoolean,
});

const common = {
  tesUrl: tesUrlSettings.tesUrl,
  // Trimmed, and an empty TES_TOKEN means none, as for the agent.
  token: { env: 'TES_TOKEN', flag: 'token', help: 'bearer token', parse: bearerToken },
  caFile: {
    env: 'TES_CA_FILE',
    flag: 'ca-file',
    help: 'extra PEM bundle trusted for the TES',
    parse: pemFile,
  },
  allowHttp: tesUrlSettings.allowHttp,
  timeout: {
    flag: 'timeout',
    help: 'limit for the HTTP call',
    default: '10s',
    parse: duration({ positive: true }),
  },
  json: boolFlag('json', 'print the response as JSON'),
} satisfies Record<string, Setting<unknown>>;

const subcommands = {
  list: {
    usage: 'tes-heartbeat runs list [flags]',
    spec: {
      ...common,
      names: flag('names', 'only these names (comma-separated)'),
      status: flag('status', 'only these statuses (comma-separated)'),
      versions: flag('versions', 'only these task versions (comma-separated)'),
      acls: flag('acls', 'only runs whose ACL holds one of these (comma-separated)'),
      sort: flag('sort', "'FIELD' or 'FIELD asc|desc', FIELD one of name, status, timeCreated, timeModified"),
      pageSize: {
        flag: 'page-size',
        help: 'runs per page, 1-1000',
        defaultHelp: "the service's (10); 1000 with --all",
        parse: integer({ min: 1, max: 1000 }),
      },
      pageToken: { flag: 'page-token', help: 'a page token from an earlier listing', parse: nonEmpty },
      all: boolFlag('all', 'follow the page tokens to the last page'),
    },
  },
  get: { usage: 'tes-heartbeat runs get RUN_ID [flags]', spec: common },
  create: {
    usage: 'tes-heartbeat runs create [--name N] [--description D] [--acl A,B] | --body FILE [flags]',
    spec: {
      ...common,
      name: flag('name', 'name of the run'),
      description: flag('description', 'description of the run'),
      acl: { flag: 'acl', help: 'access control list (comma-separated)', parse: commaList },
      body: {
        flag: 'body',
        help: "a JSON CreateTaskRunRequest file ('-' reads stdin)",
        parse: jsonObjectFile,
      },
    },
  },
  abort: { usage: 'tes-heartbeat runs abort RUN_ID [flags]', spec: common },
  heartbeat: {
    usage: `tes-heartbeat runs heartbeat RUN_ID [--pod-name P] [--nonce N] [--container ${CONTAINER_FLAG_FORM}]... [--last] | --body FILE [flags]`,
    spec: {
      ...common,
      podName: flag('pod-name', 'podName to report'),
      podUid: flag('pod-uid', 'podUID to report'),
      nonce: flag('nonce', 'the nonce the run was checked out with'),
      jobRetryCount: { flag: 'job-retry-count', help: 'jobRetryCount to report', parse: integer({ min: 0 }) },
      container: {
        flag: 'container',
        help: `a container's state, ${CONTAINER_FLAG_FORM}; once per container, in order`,
        repeatable: true,
        parse: containerFlag(systemClock.now),
      },
      last: boolFlag('last', 'send lastHeartbeat: true (the run completes or fails)'),
      body: {
        flag: 'body',
        help: "a JSON HeartbeatTaskRunRequest file ('-' reads stdin)",
        parse: jsonObjectFile,
      },
    },
  },
};
type Subcommand = keyof typeof subcommands;

function usage(): string {
  return `usage: tes-heartbeat runs <list|get|create|abort|heartbeat> [flags]

${Object.values(subcommands)
  .map((s) => `  ${s.usage}`)
  .join('\n')}

'tes-heartbeat runs <subcommand> --help' lists its settings.
`;
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return EXIT_OK;
  }
  if (name === undefined || !(name in subcommands)) {
    process.stderr.write(
      `${name === undefined ? 'tes-heartbeat runs: a subcommand is required' : `tes-heartbeat runs: unknown subcommand '${name}'`}\n${usage()}`,
    );
    return EXIT_USAGE;
  }
  const sub = name as Subcommand;
  const command = `runs ${sub}`;
  const parsed = parseSettings(subcommands[sub].spec, rest, process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(helpText(`usage: ${subcommands[sub].usage}`, subcommands[sub].spec));
    return EXIT_OK;
  }
  if (parsed.kind === 'invalid') return reportInvalid(command, parsed.problems);
  const needsId = sub === 'get' || sub === 'abort' || sub === 'heartbeat';
  const [runId, ...extra] = parsed.positionals;
  if (needsId && !runId) return reportInvalid(command, ['a RUN_ID is required']);
  if (extra.length > 0 || (!needsId && runId !== undefined))
    return reportInvalid(command, [`unexpected argument '${needsId ? extra[0] : runId}'`]);

  const values = parsed.values as Record<string, unknown> & {
    tesUrl: URL;
    token?: string;
    caFile?: string;
    allowHttp: boolean;
    timeout: number;
    json: boolean;
  };
  const cleartext = cleartextTesUrlProblem(values.tesUrl, {
    bearer: Boolean(values.token),
    allowHttp: values.allowHttp,
  });
  if (cleartext) return reportInvalid(command, [cleartext]);
  const bodyConflict = ['name', 'description', 'acl', 'podName', 'podUid', 'nonce', 'jobRetryCount'].filter(
    (key) => values[key] !== undefined,
  );
  const containers = (values.container as ContainerStatus[] | undefined) ?? [];
  if (containers.length > 0) bodyConflict.push('container');
  const twice = containers.map((c) => c.name).filter((name, i, names) => names.indexOf(name) !== i);
  if (twice.length > 0) return reportInvalid(command, [`--container: '${twice[0]}' is given twice`]);
  if (values.body !== undefined && (bodyConflict.length > 0 || values.last === true))
    return reportInvalid(command, ['--body cannot be combined with the flags that build a body']);

  // Rule 11: a TES echoes what it was sent, into errors and even into runs it returns.
  const secrets = new Secrets([values.token, typeof values.nonce === 'string' ? values.nonce : undefined]);
  const client = new TesClient({
    baseUrl: values.tesUrl,
    timeoutMs: values.timeout,
    secrets,
    ...(values.caFile !== undefined && { ca: values.caFile }),
  });
  const options = values.token ? { token: values.token } : {};
  const print = (human: string, machine: unknown) =>
    process.stdout.write(secrets.scrub(values.json ? `${JSON.stringify(machine, null, 2)}\n` : human));
  try {
    switch (sub) {
      case 'list': {
        const query = listQuery(values);
        if (values.all === true) {
          const items = await listAll(client, query, options);
          print(pageText({ items, totalItemCount: items.length }), { items, itemCount: items.length });
        } else {
          const page = await client.listTaskRuns(query, options);
          print(pageText(page), page);
        }
        break;
      }
      case 'get': {
        const taskRun = await client.getTaskRun(runId as string, options);
        print(runText(taskRun), taskRun);
        break;
      }
      case 'create': {
        const body = (values.body as CreateTaskRunRequest | undefined) ?? createBody(values);
        const taskRun = await client.createTaskRun(body, options);
        print(runText(taskRun), taskRun);
        break;
      }
      case 'abort': {
        const summary = await client.abortTaskRun(runId as string, options);
        print(runText(summary), summary);
        break;
      }
      case 'heartbeat': {
        const body = (values.body as HeartbeatTaskRunRequest | undefined) ?? heartbeatBody(values);
        const answer = await client.heartbeatTaskRun(runId as string, body, options);
        // The jwt is a credential: shown only when asked for with --json.
        print(
          `heartbeat accepted${answer.jwt ? '; the service issued a new run token (--json shows it)' : ''}\n`,
          answer,
        );
        break;
      }
    }
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof TesError)) throw error;
    process.stderr.write(secrets.scrub(`tes-heartbeat ${command}: ${error.message}\n`));
    return EXIT_SERVICE_ERROR;
  } finally {
    await client.close();
  }
}

function listQuery(values: Record<string, unknown>): ListTaskRunsQuery {
  const query: ListTaskRunsQuery = {};
  for (const key of ['names', 'status', 'versions', 'acls', 'sort', 'pageToken'] as const) {
    const value = values[key];
    if (typeof value === 'string' && value !== '') query[key] = value;
  }
  const pageSize = values.pageSize as number | undefined;
  if (pageSize !== undefined) query.pageSize = pageSize;
  else if (values.all === true) query.pageSize = 1000;
  return query;
}

/** Every run from the query's page on, following nextPageToken; a token seen twice ends it. */
async function listAll(
  client: TesClient,
  query: ListTaskRunsQuery,
  options: { token?: string },
): Promise<TaskRunSummary[]> {
  const items: TaskRunSummary[] = [];
  const seen = new Set<string>();
  let pageToken = query.pageToken;
  for (;;) {
    const page = await client.listTaskRuns(
      pageToken === undefined ? query : { ...query, pageToken },
      options,
    );
    items.push(...(page.items ?? []));
    const next = page.nextPageToken;
    if (!next || seen.has(next)) return items;
    seen.add(next);
    pageToken = next;
  }
}

function createBody(values: Record<string, unknown>): CreateTaskRunRequest | undefined {
  const body: CreateTaskRunRequest = {};
  if (typeof values.name === 'string') body.name = values.name;
  if (typeof values.description === 'string') body.description = values.description;
  if (Array.isArray(values.acl)) body.acl = values.acl as string[];
  return Object.keys(body).length > 0 ? body : undefined;
}

function heartbeatBody(values: Record<string, unknown>): HeartbeatTaskRunRequest {
  const body: HeartbeatTaskRunRequest = {};
  if (typeof values.podName === 'string') body.podName = values.podName;
  if (typeof values.podUid === 'string') body.podUID = values.podUid;
  if (typeof values.nonce === 'string') body.nonce = values.nonce;
  if (typeof values.jobRetryCount === 'number') body.jobRetryCount = values.jobRetryCount;
  const containers = values.container as ContainerStatus[];
  if (containers.length > 0) body.containerStatus = containers;
  if (values.last === true) body.lastHeartbeat = true;
  return body;
}
