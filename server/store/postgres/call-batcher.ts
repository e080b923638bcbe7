/**
 * Gathers what arrives in one turn of the event loop into one call to the database. At most
 * `calls` run at once: while they do, new items wait, and the first call to finish starts the next
 * with everything that arrived meanwhile. Under load the batches grow, so the work that every call
 * pays once (a round trip, the scope locks, a commit and its wait for the disk) is shared by more
 * items; alone, an item starts at once.
 */
export class CallBatcher<T> {
  private readonly queue: T[] = [];
  private scheduled = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    /** Runs one batch; it settles each item's own promise itself, and must not reject. */
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly options: { calls: number; maxPerCall: number },
  ) {}

  push(item: T): void {
    this.queue.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Starts what is queued now, and resolves once no call is running or queued. */
  async drain(): Promise<void> {
    this.flush();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && this.running.size < this.options.calls) {
      const call = this.run(this.queue.splice(0, this.options.maxPerCall));
      this.running.add(call);
      void call.finally(() => {
        this.running.delete(call);
        this.flush();
      });
    }
  }
}
