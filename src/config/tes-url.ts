// TES_URL and rule T6 (bearer only over TLS), one declaration for every command that
// talks to a TES with a bearer: the agent, the fleet and `runs`.
//
// The rule is about the bearer, as the finding was: without a configured token or token
// file an http:// TES is allowed: an unauthenticated TES on a trusted network is a
// deliberate setup, and refusing it would stop every agent of such an install with exit 2,
// failing its task pods (a jwt such a TES issues came in clear text already). The chart
// refuses an http:// tes.url with a token Secret at install time, so adding a token later
// cannot turn into agents that exit 2.
import { flagBoolean, httpUrl } from './settings.ts';

export const tesUrlSettings = {
  tesUrl: { env: 'TES_URL', flag: 'tes-url', required: true, help: 'base URL of the TES', parse: httpUrl },
  allowHttp: {
    env: 'TES_ALLOW_HTTP',
    flag: 'allow-http',
    boolean: true,
    default: 'false',
    help: 'allow an http:// TES_URL to a host that is not loopback (the bearer and nonce go in clear text)',
    parse: flagBoolean,
  },
} as const;

/**
 * Rule T6: the problem line (naming TES_URL) when `tesUrl` would carry a bearer (a
 * configured token or token file) in clear text to another machine, else undefined.
 * Loopback is judged by what the URL says — 127.0.0.0/8, ::1 or the name `localhost` —
 * never by resolving a name (a DNS answer is no promise about where the next connection
 * goes).
 */
export function cleartextTesUrlProblem(
  tesUrl: URL,
  sends: { bearer: boolean; allowHttp: boolean },
): string | undefined {
  if (tesUrl.protocol !== 'http:' || !sends.bearer || sends.allowHttp || isLoopbackHost(tesUrl.hostname))
    return undefined;
  // The origin only: a URL's user-info part can hold a password.
  return `TES_URL (--tes-url): ${tesUrl.origin} would carry the bearer token and the nonce in clear text to a host that is not loopback; use https://, or set TES_ALLOW_HTTP=true (--allow-http) on a network you trust`;
}

/** `hostname` as WHATWG URL normalises it: IPv4 in dotted decimal, IPv6 in brackets, lower case. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
