// Durations as the contract writes them: one or more <number><unit> parts,
// units ms, s, m, h ("500ms", "1.5s", "1m30s"). A bare number is malformed.
const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (text === '') return undefined;
  let total = 0;
  part.lastIndex = 0;
  while (part.lastIndex < text.length) {
    const match = part.exec(text);
    if (!match) return undefined;
    total += Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
  }
  return total;
}

/** The shortest faithful spelling, for --help and logs: 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (rest >= size) {
      const whole = Math.floor(rest / size);
      out += `${whole}${unit}`;
      rest -= whole * size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
