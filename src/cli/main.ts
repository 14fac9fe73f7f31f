// The one executable: `tes-heartbeat <command>`. Each command's module is
// imported only when chosen, so the agent pays for nothing it does not use.
import { EXIT_INTERNAL, EXIT_USAGE, VERSION } from './exit.ts';

type Command = { run(argv: string[]): Promise<number> };

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  agent: {
    summary: 'the sidecar: watch the own pod, send heartbeats',
    load: () => import('../agent/command.ts'),
  },
  emulator: {
    summary: 'a local in-memory TES (Task Runs API)',
    load: () => import('../emulator/command.ts'),
  },
  runs: {
    summary: 'client for the Task Runs API: list|get|create|abort|heartbeat',
    load: () => import('../runs/command.ts'),
  },
  webhook: {
    summary: 'the admission webhook that injects the agent',
    load: () => import('../webhook/command.ts'),
  },
  fleet: {
    summary: 'heartbeats for many task pods, per node or per cluster',
    load: () => import('../fleet/command.ts'),
  },
  demo: {
    summary: 'the whole path on one machine, no cluster needed',
    load: () => import('../demo/command.ts'),
  },
};

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: tes-heartbeat <command> [flags]\n\nCommands:\n${rows.join('\n')}\n\n'tes-heartbeat <command> --help' lists a command's settings.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tes-heartbeat: unknown command '${name}'\n${usage()}`);
    return EXIT_USAGE;
  }
  if (rest.includes('--version')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `tes-heartbeat: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = EXIT_INTERNAL;
  },
);
