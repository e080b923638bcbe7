import type { Hold } from '../store/types.js';

interface Sums {
  tokens: number;
  micros: number;
}

interface LiveHold {
  hold: Hold;
  /** What this hold set aside against each budget (a budget created mid-stream joins later, with less). */
  perBudget: Map<string, Sums>;
  /** Its settlement is on its way to disk: expiry must not release it first. */
  settling: boolean;
}

const ZERO: Readonly<Sums> = Object.freeze({ tokens: 0, micros: 0 });

/**
 * The holds of requests in flight, and what they set aside per budget. Kept in memory by a store
 * whose process owns the database, so admission costs map look-ups instead of a disk commit (the
 * store copies holds to the file after the fact, for recovery after a crash: see HoldJournal). A
 * budget's reserved amount is kept as a running sum, exact because every change to a hold passes
 * through here.
 */
export class HoldBook {
  private readonly holds = new Map<string, LiveHold>();
  private readonly reservedByBudget = new Map<string, Sums>();
  /** Live holds per key, user and project (`key:ID`, …), for `maxConcurrent`. */
  private readonly liveBySubject = new Map<string, number>();

  reserved(budgetKey: string): Readonly<Sums> {
    return this.reservedByBudget.get(budgetKey) ?? ZERO;
  }

  /** The live holds of a key, user or project (`key:ID`, `user:ID`, `project:ID`). */
  live(subjectScope: string): number {
    return this.liveBySubject.get(subjectScope) ?? 0;
  }

  get(id: string): Hold | undefined {
    return this.holds.get(id)?.hold;
  }

  has(id: string): boolean {
    return this.holds.has(id);
  }

  /** Adds a hold, or grows one, by `amount` against each of `budgetKeys`. */
  add(hold: Hold, budgetKeys: readonly string[], amount: Sums): void {
    let live = this.holds.get(hold.id);
    if (live) live.hold = hold;
    else {
      this.holds.set(hold.id, (live = { hold, perBudget: new Map(), settling: false }));
      this.countLive(hold, 1);
    }
    for (const key of budgetKeys) {
      const mine = live.perBudget.get(key);
      if (mine) {
        mine.tokens += amount.tokens;
        mine.micros += amount.micros;
      } else {
        live.perBudget.set(key, { ...amount });
      }
      const total = this.reservedByBudget.get(key);
      if (total) {
        total.tokens += amount.tokens;
        total.micros += amount.micros;
      } else {
        this.reservedByBudget.set(key, { ...amount });
      }
    }
  }

  private countLive({ subject }: Hold, by: 1 | -1): void {
    const scopes = [`key:${subject.keyId}`, `user:${subject.userId}`];
    if (subject.projectId !== null) scopes.push(`project:${subject.projectId}`);
    for (const scope of scopes) {
      const n = (this.liveBySubject.get(scope) ?? 0) + by;
      if (n === 0) this.liveBySubject.delete(scope);
      else this.liveBySubject.set(scope, n);
    }
  }

  renew(id: string, expiresAt: number): boolean {
    const live = this.holds.get(id);
    if (!live) return false;
    live.hold = { ...live.hold, expiresAt: Math.max(live.hold.expiresAt, expiresAt) };
    return true;
  }

  markSettling(id: string): void {
    const live = this.holds.get(id);
    if (live) live.settling = true;
  }

  isSettling(id: string): boolean {
    return this.holds.get(id)?.settling === true;
  }

  /** Removes a hold and gives back what it set aside. False when it was not there. */
  remove(id: string): boolean {
    const live = this.holds.get(id);
    if (!live) return false;
    this.holds.delete(id);
    this.countLive(live.hold, -1);
    for (const [key, mine] of live.perBudget) {
      const total = this.reservedByBudget.get(key);
      // Gone when it reached zero: every hold still counted in it set aside nothing (amounts are never negative).
      if (!total) continue;
      total.tokens -= mine.tokens;
      total.micros -= mine.micros;
      if (total.tokens === 0 && total.micros === 0) this.reservedByBudget.delete(key);
    }
    return true;
  }

  /** Releases holds whose request stopped renewing them (unless being settled). Returns their ids. */
  expire(now: number): string[] {
    const expired: string[] = [];
    for (const [id, live] of this.holds) {
      if (live.hold.expiresAt <= now && !live.settling && this.remove(id)) expired.push(id);
    }
    return expired;
  }

  list(): Hold[] {
    return [...this.holds.values()].map((l) => l.hold).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }
}
