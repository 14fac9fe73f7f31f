// Admission warnings as kubectl shows them: one line, at most 256 characters.

/** Kubernetes shows at most this many characters of one admission warning. */
export const MAX_WARNING_LENGTH = 256;

/** One line of at most MAX_WARNING_LENGTH characters. */
export function warning(text: string): string {
  const line = text.replace(/[\r\n\t]+/g, ' ');
  return line.length <= MAX_WARNING_LENGTH ? line : `${line.slice(0, MAX_WARNING_LENGTH - 1)}…`;
}
