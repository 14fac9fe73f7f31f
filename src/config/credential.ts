// Contract rule 12: a bearer credential is trimmed (a Secret made with
// `kubectl create secret --from-file` from a file ending in a newline carries that
// newline), and it must be something an HTTP header can carry. One meaning for
// TES_TOKEN, the token file's content and a jwt received, in every command.
import { Problem } from './settings.ts';

/** RFC 9110 field-value characters, exactly as undici (and Node's http) check them. */
const NOT_A_HEADER_CHARACTER = /[^\t\x20-\x7e\x80-\xff]/;

export function trimCredential(raw: string): string {
  return raw.trim();
}

/** Whether an `authorization: Bearer …` header can carry `value`. */
export function headerCanCarry(value: string): boolean {
  return !NOT_A_HEADER_CHARACTER.test(value);
}

/** What is wrong with a credential, never the credential itself. */
export const NOT_A_HEADER_VALUE = 'holds a character an HTTP header cannot carry (a line break inside?)';

/** The TES_TOKEN setting: trimmed; empty means none; a value no header can carry is a problem. */
export function bearerToken(raw: string): string | Problem {
  const token = trimCredential(raw);
  return headerCanCarry(token) ? token : new Problem(NOT_A_HEADER_VALUE);
}
