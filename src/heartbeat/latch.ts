// A one-way abort that makes its AbortSignal only when someone asks for it. The fleet
// holds thousands of heartbeat loops, and most of their stops (the end, the final
// deadline, an abandon) never come while the process runs: an AbortController each,
// made up front, was ~9 controllers and their signals per run, live for the run's life.

export class Latch {
  private controller: AbortController | undefined;
  /** The one controller aborted with the latch (the attempt in flight), if any. */
  private attached: AbortController | undefined;
  private why: unknown;
  fired = false;

  /** Why it fired (undefined until then). */
  get reason(): unknown {
    return this.why;
  }

  /** Aborted when the latch fires, with its reason (made on first use). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.fired) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  /** Fires once: later calls change nothing (the first reason stays, as with AbortSignal.any). */
  fire(reason: unknown): void {
    if (this.fired) return;
    this.fired = true;
    this.why = reason;
    this.controller?.abort(reason);
    this.attached?.abort(reason);
  }

  /** `controller` is aborted when the latch fires (one at a time: a loop has one attempt in flight). */
  attach(controller: AbortController): void {
    this.attached = controller;
  }

  detach(controller: AbortController): void {
    if (this.attached === controller) this.attached = undefined;
  }
}
