export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('tes-heartbeat webhook: not built yet\n');
  return 1;
}
