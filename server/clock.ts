/** Where time comes from: the system in production, a hand-moved clock in tests. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(private epochMs: number) {}

  now(): number {
    return this.epochMs;
  }

  set(epochMs: number): void {
    this.epochMs = epochMs;
  }

  advance(ms: number): void {
    this.epochMs += ms;
  }
}
