// Contract rule 11: every string used as a credential or nonce is scrubbed by value
// from whatever the program prints, because a TES echoes what it was sent (in an
// ErrorResponse message, a text/plain body, and so in stack traces and causes).
// This is the one place that knows those values; the logger, the TES client and
// the `runs` command all scrub through it.
//
// The fleet holds thousands of runs, each with a nonce and jwts: scrubbing looks every
// value up by its first MIN_SCRUBBED_LENGTH characters and then by its length, so a line
// costs the same with ten secrets or fifty thousand — also when they all share a prefix
// ('nonce-…') — holding or forgetting a value costs the same too, and a run's values are
// forgotten when the run ends.

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

/** Where a bearer or a run records the values it meets: the process's scrubber, or one run's share of it. */
export interface SecretSink {
  /** A value now in use or just received, of one `kind` ('jwt', 'token file', 'nonce'), refused ones included. */
  add(kind: string, value: string | undefined): void;
}

/** Values per kind, in the order last seen (the oldest is forgotten first), at most `keep` per kind. */
class Rotating {
  readonly kinds = new Map<string, Set<string>>();
  private readonly keep: number;

  constructor(keep: number) {
    this.keep = keep;
  }

  /** Whether `value` is new to its kind, and the value it pushed out, if any. */
  add(kind: string, value: string): { added: boolean; out?: string } {
    let values = this.kinds.get(kind);
    if (!values) {
      values = new Set();
      this.kinds.set(kind, values);
    }
    const added = !values.delete(value);
    values.add(value);
    if (values.size <= this.keep) return { added };
    const out = values.values().next().value as string;
    values.delete(out);
    return { added, out };
  }

  *all(): Iterable<string> {
    for (const values of this.kinds.values()) yield* values;
  }
}

export class Secrets implements SecretSink {
  /** Kept for good (TES_TOKEN, TES_NONCE). */
  private readonly fixed = new Set<string>();
  private readonly rotating: Rotating;
  /** How many holdings (the process's kinds, each run's) use a form: it is scrubbed while any does. */
  private readonly held = new Map<string, number>();
  /**
   * Every held form, by its first MIN_SCRUBBED_LENGTH characters: the form itself while
   * it is the only one (nonces are random from their first character: nearly always),
   * else the forms by length — a Map and a Set per prefix would cost every run ~400 bytes.
   */
  private readonly byPrefix = new Map<string, string | Forms>();

  /** `fixed` are kept for good (TES_TOKEN, TES_NONCE); `keep` bounds the rotating ones. */
  constructor(fixed: Iterable<string | undefined> = [], keep = ROTATING_KEPT) {
    this.rotating = new Rotating(keep);
    for (const value of fixed) {
      if (!scrubbable(value) || this.fixed.has(value)) continue;
      this.fixed.add(value);
      this.hold(value);
    }
  }

  add(kind: string, value: string | undefined): void {
    if (!scrubbable(value) || this.fixed.has(value)) return;
    this.keepIn(this.rotating, kind, value);
  }

  /**
   * One run's share (the fleet): its nonce and its newest `keep` values of each kind
   * (jwts), forgotten by `forget()` when the run ends. The process's own values stay.
   */
  forRun(keep: number): RunSecrets {
    const rotating = new Rotating(keep);
    let forgotten = false;
    // Methods, not arrow functions: the build's keepNames gives every named arrow its own
    // `name` property and hidden class, per run.
    const secrets = this;
    return {
      add(kind, value) {
        if (!forgotten && scrubbable(value)) secrets.keepIn(rotating, kind, value);
      },
      forget() {
        if (forgotten) return;
        forgotten = true;
        for (const value of rotating.all()) secrets.release(value);
        rotating.kinds.clear();
      },
    };
  }

  /** `text` with every known secret, raw or JSON-escaped, replaced by `[redacted]`. */
  scrub(text: string): string {
    if (this.byPrefix.size === 0) return text;
    let out = '';
    let copied = 0;
    for (let at = 0; at <= text.length - MIN_SCRUBBED_LENGTH; ) {
      const hit = longestAt(this.byPrefix.get(text.slice(at, at + MIN_SCRUBBED_LENGTH)), text, at);
      if (hit === undefined) {
        at++;
        continue;
      }
      out += text.slice(copied, at) + REDACTED;
      at += hit.length;
      copied = at;
    }
    return copied === 0 ? text : out + text.slice(copied);
  }

  private keepIn(rotating: Rotating, kind: string, value: string): void {
    const { added, out } = rotating.add(kind, value);
    if (added) this.hold(value);
    if (out !== undefined) this.release(out);
  }

  private hold(value: string): void {
    for (const form of forms(value)) {
      const count = this.held.get(form) ?? 0;
      this.held.set(form, count + 1);
      if (count > 0) continue;
      const key = form.slice(0, MIN_SCRUBBED_LENGTH);
      const known = this.byPrefix.get(key);
      if (known === undefined) this.byPrefix.set(key, form);
      else if (typeof known === 'string') this.byPrefix.set(key, new Forms([known, form]));
      else known.add(form);
    }
  }

  private release(value: string): void {
    for (const form of forms(value)) {
      const count = this.held.get(form) ?? 0;
      if (count > 1) {
        this.held.set(form, count - 1);
        continue;
      }
      this.held.delete(form);
      const key = form.slice(0, MIN_SCRUBBED_LENGTH);
      const known = this.byPrefix.get(key);
      if (known === form) this.byPrefix.delete(key);
      else if (typeof known === 'object' && known.delete(form) && known.empty) this.byPrefix.delete(key);
    }
  }
}

/**
 * The held forms of one prefix, by length: a position is tried once per distinct length
 * (a handful: nonces and jwts of one issuer are of one length), longest first, never once
 * per form.
 */
function longestAt(held: string | Forms | undefined, text: string, at: number): string | undefined {
  if (typeof held !== 'string') return held?.longestAt(text, at);
  return text.startsWith(held, at) ? held : undefined;
}

class Forms {
  private readonly byLength = new Map<number, Set<string>>();
  /** The keys of `byLength`, longest first. */
  private lengths: number[] = [];

  constructor(forms: string[]) {
    for (const form of forms) this.add(form);
  }

  get empty(): boolean {
    return this.lengths.length === 0;
  }

  add(form: string): void {
    const same = this.byLength.get(form.length);
    if (same) {
      same.add(form);
      return;
    }
    this.byLength.set(form.length, new Set([form]));
    this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
  }

  /** Whether `form` was held. */
  delete(form: string): boolean {
    const same = this.byLength.get(form.length);
    if (!same?.delete(form)) return false;
    if (same.size === 0) {
      this.byLength.delete(form.length);
      this.lengths = this.lengths.filter((length) => length !== form.length);
    }
    return true;
  }

  /** The longest held form that `text` has at `at`. */
  longestAt(text: string, at: number): string | undefined {
    for (const length of this.lengths) {
      const candidate = text.slice(at, at + length);
      if (candidate.length === length && this.byLength.get(length)?.has(candidate)) return candidate;
    }
    return undefined;
  }
}

/** One run's values in the process's scrubber. */
export interface RunSecrets extends SecretSink {
  /** The run ended: its values are no longer scrubbed (unless another holder still uses them). */
  forget(): void;
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
