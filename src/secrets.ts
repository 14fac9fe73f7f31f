// Contract rule 11: every string used as a credential or nonce is scrubbed by value
// from whatever the program prints, because a TES echoes what it was sent (in an
// ErrorResponse message, a text/plain body, and so in stack traces and causes).
// This is the one place that knows those values; the logger, the TES client and
// the `runs` command all scrub through it.

/** Shorter values are redacted by field path only: scrubbing them would mangle every line. */
export const MIN_SCRUBBED_LENGTH = 6;

/**
 * How many values of one rotating kind (jwts; token-file contents) are remembered. A
 * TES that issues a fresh jwt with every answer would otherwise grow the set for
 * ever; the agent only ever sends the newest, so an echo of an older one is not
 * expected. Kinds are kept apart, so that jwts never push a token out.
 */
export const ROTATING_KEPT = 64;

const REDACTED = '[redacted]';

export class Secrets {
  private readonly fixed = new Map<string, string[]>();
  /** Per kind, in the order last seen: the oldest is forgotten first. */
  private readonly rotating = new Map<string, Map<string, string[]>>();
  private readonly keep: number;
  /** Every form of every value, longest first, so no value is cut apart by one inside it; rebuilt after `add`. */
  private ordered: string[] | undefined;

  /** `fixed` are kept for good (TES_TOKEN, TES_NONCE); `keep` bounds the rotating ones. */
  constructor(fixed: Iterable<string | undefined> = [], keep = ROTATING_KEPT) {
    this.keep = keep;
    for (const value of fixed) if (scrubbable(value)) this.fixed.set(value, forms(value));
  }

  /** A value now in use or just received, of one `kind` ('jwt', 'token file'), refused ones included. */
  add(kind: string, value: string | undefined): void {
    if (!scrubbable(value) || this.fixed.has(value)) return;
    let values = this.rotating.get(kind);
    if (!values) {
      values = new Map();
      this.rotating.set(kind, values);
    }
    values.delete(value);
    values.set(value, forms(value));
    if (values.size > this.keep) values.delete(values.keys().next().value as string);
    this.ordered = undefined;
  }

  /** `text` with every known secret, raw or JSON-escaped, replaced by `[redacted]`. */
  scrub(text: string): string {
    this.ordered ??= [this.fixed, ...this.rotating.values()]
      .flatMap((list) => [...list.values()].flat())
      .sort((a, b) => b.length - a.length);
    let out = text;
    for (const form of this.ordered) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    return out;
  }
}

function scrubbable(value: string | undefined): value is string {
  return value !== undefined && value.length >= MIN_SCRUBBED_LENGTH;
}

/** The value as it appears raw, inside a JSON string, and inside a JSON string that itself holds JSON. */
function forms(value: string): string[] {
  const once = JSON.stringify(value).slice(1, -1);
  const twice = JSON.stringify(once).slice(1, -1);
  return [...new Set([twice, once, value])];
}
