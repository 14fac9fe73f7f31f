// JWT-shaped bearer tokens scoped to one run: base64url header.payload.signature,
// HMAC-SHA256 under a key that lives as long as the emulator. Every token issued
// for a run stays valid for that run; none is valid for anything else.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

export class RunTokens {
  private readonly key = randomBytes(32);
  private issued = 0;

  /** A fresh token for `runId`; `nowMs` and a counter make each one distinct. */
  issue(runId: string, nowMs: number): string {
    this.issued += 1;
    const payload = Buffer.from(
      JSON.stringify({ sub: runId, scope: 'taskrun', iat: Math.floor(nowMs / 1000), jti: this.issued }),
    ).toString('base64url');
    return `${HEADER}.${payload}.${this.sign(`${HEADER}.${payload}`)}`;
  }

  /** The run a token was issued for, or undefined when it is not one of ours. */
  runOf(token: string): string | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, payload, signature] = parts as [string, string, string];
    const expected = Buffer.from(this.sign(`${header}.${payload}`));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const sub = (claims as { sub?: unknown } | null)?.sub;
      return typeof sub === 'string' ? sub : undefined;
    } catch {
      return undefined;
    }
  }

  private sign(input: string): string {
    return createHmac('sha256', this.key).update(input).digest('base64url');
  }
}

/**
 * Whether a bearer someone sent is the emulator's token (rule T7), in time that does not
 * depend on where they differ: both sides are hashed to the same length first, since
 * `timingSafeEqual` needs equal lengths and an early length check would leak the length.
 */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
