// At most `max` at a time, the rest waiting their turn in arrival order; a wait can be
// given up through its signal. The fleet's TES requests (FLEET_MAX_IN_FLIGHT) and its
// one-off Kubernetes reads and writes (a first list of a thousand pods must not open a
// thousand TLS connections to the API server at once) go through one each.
export class Limiter {
  private readonly max: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!(max >= 1)) throw new TypeError(`Limiter: max must be at least 1, got ${max}`);
    this.max = max;
  }

  /** How many hold a turn now. */
  get busy(): number {
    return this.running;
  }

  /** Runs `work` once a turn is free; rejects with the signal's reason when it aborts while waiting. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.turn(signal);
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the turn passes on: `running` stays
      else this.running--;
    }
  }

  private async turn(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.running < this.max) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const granted = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(granted);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(granted);
    });
  }
}
