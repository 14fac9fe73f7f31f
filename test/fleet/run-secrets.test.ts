// Rule 11 per run (contract: Fleet mode, where the rules meet): a run's nonce and its
// newest few jwts are scrubbed while it runs and forgotten when it ends; the process's
// own tokens are kept for good; a value two holders share stays until both let go.
import { describe, expect, it, vi } from 'vitest';
import { Secrets } from '../../src/secrets.ts';

describe('Secrets.forRun', () => {
  it("scrubs a run's values while it runs and forgets them when it ends, never the process's", () => {
    const secrets = new Secrets(['fleet-token-123']);
    const run = secrets.forRun(2);
    run.add('nonce', 'nonce-aaaaaa');
    for (const n of [1, 2, 3]) run.add('jwt', `jwt-of-run-${n}`);
    const line = 'fleet-token-123 nonce-aaaaaa jwt-of-run-1 jwt-of-run-2 jwt-of-run-3';
    // Its newest 2 jwts: the oldest is no longer scrubbed.
    expect(secrets.scrub(line)).toBe('[redacted] [redacted] jwt-of-run-1 [redacted] [redacted]');
    run.forget();
    expect(secrets.scrub(line)).toBe('[redacted] nonce-aaaaaa jwt-of-run-1 jwt-of-run-2 jwt-of-run-3');
    run.add('jwt', 'jwt-after-the-end'); // a late answer: not remembered for an ended run
    expect(secrets.scrub('jwt-after-the-end')).toBe('jwt-after-the-end');
  });

  it('a value held by two runs stays scrubbed until both ended', () => {
    const secrets = new Secrets();
    const a = secrets.forRun(4);
    const b = secrets.forRun(4);
    a.add('nonce', 'shared-nonce-1');
    b.add('nonce', 'shared-nonce-1');
    a.forget();
    expect(secrets.scrub('shared-nonce-1')).toBe('[redacted]');
    b.forget();
    expect(secrets.scrub('shared-nonce-1')).toBe('shared-nonce-1');
  });

  it('scrubs among ten thousand runs, and forgets each with its run', () => {
    const secrets = new Secrets(['fleet-token-123']);
    const runs = Array.from({ length: 10_000 }, (_, i) => {
      const run = secrets.forRun(4);
      run.add('nonce', `nonce-${i}-abcdef`);
      run.add('jwt', `eyJhbGciOiJIUzI1NiJ9.run-${i}.sig`);
      return run;
    });
    const line = JSON.stringify({ msg: 'x', err: 'nonce-9999-abcdef and eyJhbGciOiJIUzI1NiJ9.run-17.sig' });
    expect(JSON.parse(secrets.scrub(line)).err).toBe('[redacted] and [redacted]');
    for (const run of runs) run.forget();
    expect(secrets.scrub(line)).toBe(line);
    expect(secrets.scrub('fleet-token-123')).toBe('[redacted]');
  });

  it('ten thousand values sharing their first characters: each scrubbed alone, a line tries each position once per length, not once per value; forgetting leaves nothing', () => {
    const secrets = new Secrets(['fleet-token-123']);
    // A TES whose nonces all start 'nonce-': every value falls under one prefix.
    const nonce = (i: number) => `nonce-${String(i).padStart(8, '0')}`;
    const runs = Array.from({ length: 10_000 }, (_, i) => {
      const run = secrets.forRun(4);
      run.add('nonce', nonce(i));
      return run;
    });
    const line = `${nonce(0)} ${nonce(4321)} nonce-99999999 ${nonce(9999)}x fleet-token-123`;
    // Counted, not timed: a scrubber that compares a position with every held value
    // (String.prototype.startsWith per value) calls it ~10,000 times per position here.
    const startsWith = vi.spyOn(String.prototype, 'startsWith');
    const scrubbed = secrets.scrub(line);
    const comparisons = startsWith.mock.calls.length;
    startsWith.mockRestore();
    expect(scrubbed).toBe('[redacted] [redacted] nonce-99999999 [redacted]x [redacted]');
    expect(comparisons).toBeLessThan(100);
    for (const run of runs.slice(0, 5_000)) run.forget();
    expect(secrets.scrub(line)).toBe(`${nonce(0)} ${nonce(4321)} nonce-99999999 [redacted]x [redacted]`);
    for (const run of runs.slice(5_000)) run.forget();
    expect(secrets.scrub(line)).toBe(`${nonce(0)} ${nonce(4321)} nonce-99999999 ${nonce(9999)}x [redacted]`);
    // Held again after being forgotten everywhere: scrubbed again (nothing stale left behind).
    secrets.forRun(4).add('nonce', nonce(4321));
    expect(secrets.scrub(line)).toBe(`${nonce(0)} [redacted] nonce-99999999 ${nonce(9999)}x [redacted]`);
  });
});
