import { describe, expect, it } from 'vitest';
import { parseRetryAfter, TesError } from '../../src/tes/errors.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('parseRetryAfter', () => {
  it.each([
    { desc: 'delay-seconds', value: '120', ms: 120_000 },
    { desc: 'zero seconds', value: '0', ms: 0 },
    { desc: 'seconds with spaces around', value: ' 3 ', ms: 3000 },
    { desc: 'IMF-fixdate in the future', value: 'Thu, 01 Jan 2026 00:00:30 GMT', ms: 30_000 },
    { desc: 'IMF-fixdate in the past is no wait', value: 'Wed, 31 Dec 2025 23:59:00 GMT', ms: 0 },
    { desc: 'obsolete RFC 850 date', value: 'Thursday, 01-Jan-26 00:01:00 GMT', ms: 60_000 },
    { desc: 'obsolete asctime date, read as GMT', value: 'Thu Jan  1 00:00:10 2026', ms: 10_000 },
  ])('$desc', ({ value, ms }) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it.each([
    { desc: 'absent', value: undefined },
    { desc: 'empty', value: '' },
    { desc: 'negative', value: '-5' },
    { desc: 'fractional', value: '1.5' },
    { desc: 'garbage', value: 'soon' },
    { desc: 'a bare year Date.parse would take', value: '2027-01-01' },
    { desc: 'a date without GMT', value: 'Thu, 01 Jan 2026 00:00:30 +0100' },
    { desc: 'an impossible date', value: 'Thu, 45 Foo 2026 00:00:30 GMT' },
  ])('$desc → undefined', ({ value }) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });
});

describe('TesError', () => {
  const base = { operation: 'heartbeatTaskRun', method: 'POST', url: 'http://tes/v1/tasks/runs/x:heartbeat' };

  it.each([408, 425, 429, 500, 502, 503, 504])('HTTP %d is retryable', (status) => {
    expect(new TesError({ ...base, code: 'TES_HTTP_ERROR', status }).retryable).toBe(true);
  });

  it.each([400, 401, 403, 404, 409, 413, 415, 501])('HTTP %d is not retryable', (status) => {
    expect(new TesError({ ...base, code: 'TES_HTTP_ERROR', status }).retryable).toBe(false);
  });

  it('timeouts and network errors are retryable; a bad 2xx body is not', () => {
    expect(new TesError({ ...base, code: 'TES_TIMEOUT' }).retryable).toBe(true);
    expect(new TesError({ ...base, code: 'TES_NETWORK_ERROR' }).retryable).toBe(true);
    expect(new TesError({ ...base, code: 'TES_BAD_RESPONSE', status: 200 }).retryable).toBe(false);
  });

  it('says operation, URL, status, code and message in one line', () => {
    const error = new TesError({
      ...base,
      code: 'TES_HTTP_ERROR',
      status: 409,
      errorCode: 'NonceMismatch',
      errorMessage: 'nonce differs',
    });
    expect(error.message).toBe(
      'heartbeatTaskRun POST http://tes/v1/tasks/runs/x:heartbeat: HTTP 409 NonceMismatch: nonce differs',
    );
    expect(error).toMatchObject({ name: 'TesError', status: 409, errorCode: 'NonceMismatch' });
  });
});
