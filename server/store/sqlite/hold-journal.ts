import type { Database as Db, Statement } from 'better-sqlite3';
import type { Hold, OrphanedHold, PendingCharge } from '../types.js';

/** What a live request would be charged if its process died now (its hold's amounts are the book's). */
interface Charge {
  /** The PendingCharge as stored, serialised once when the hold is taken. */
  pendingJson: string;
  deliveredTokens: number;
  updatedAt: number;
}

interface HoldRow {
  id: string;
  user_id: string;
  project_id: string | null;
  key_id: string;
  tokens: number;
  micros: number;
  output_tokens: number;
  created_at: number;
  expires_at: number;
  pending: string;
  delivered_tokens: number;
  updated_at: number;
}

/** The rows one transaction wrote and deleted: memory learns of them once it has committed. */
export interface JournalWrite {
  written: string[];
  deleted: string[];
}

/**
 * Copies the holds of live requests that carry a pending charge into the `holds` table (migration
 * 5), so that a process killed mid-request leaves them behind and the next start settles them at
 * their last count. Admission never reads the table: a hold is decided in memory (HoldBook) and
 * copied after the fact, in the store's next commit (the group commit settles share, a turn of the
 * event loop later), so the request path never waits for a write. What a crash can lose is the last
 * turn's changes: a hold taken, or an extension's count, not yet committed.
 *
 * A hold taken and settled before that commit is never written at all. A settle deletes its hold's
 * row in the transaction that writes its entry (see `settle`), so a recovered request is charged
 * once: either its entry exists, or its row does.
 */
export class HoldJournal {
  private readonly charges = new Map<string, Charge>();
  /** Holds whose row may differ from memory: brought in line by the next `write`. */
  private readonly dirty = new Set<string>();
  /** Holds with a committed row in the file. */
  private readonly stored = new Set<string>();
  private readonly s: {
    insert: Statement<unknown[]>;
    update: Statement<unknown[]>;
    delete: Statement<[string]>;
    all: Statement<[], HoldRow>;
  };

  constructor(db: Db) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO holds (id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, delivered_tokens, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // A row already written only changes by growing: its subject and pending charge stay.
      update: db.prepare('UPDATE holds SET tokens = ?, micros = ?, output_tokens = ?, expires_at = ?, delivered_tokens = ?, updated_at = ? WHERE id = ?'),
      delete: db.prepare('DELETE FROM holds WHERE id = ?'),
      all: db.prepare('SELECT * FROM holds ORDER BY created_at, id'),
    };
  }

  /** The rows a previous process left: its requests died with it. They stay until settled or released. */
  loadOrphans(): OrphanedHold[] {
    return this.s.all.all().map((r) => {
      this.stored.add(r.id);
      return {
        hold: {
          id: r.id,
          subject: { userId: r.user_id, projectId: r.project_id, keyId: r.key_id },
          tokens: r.tokens,
          micros: r.micros,
          outputTokens: r.output_tokens,
          createdAt: r.created_at,
          expiresAt: r.expires_at,
        },
        pending: JSON.parse(r.pending) as PendingCharge,
        deliveredTokens: r.delivered_tokens,
        updatedAt: r.updated_at,
      };
    });
  }

  get hasWrites(): boolean {
    return this.dirty.size > 0;
  }

  /** A hold was taken with a pending charge. */
  taken(holdId: string, pending: PendingCharge, now: number): void {
    this.charges.set(holdId, { pendingJson: JSON.stringify(pending), deliveredTokens: 0, updatedAt: now });
    this.dirty.add(holdId);
  }

  /** A hold grew; `deliveredTokens` is its request's output count then. False for a hold without a charge. */
  grown(holdId: string, deliveredTokens: number | undefined, now: number): boolean {
    const charge = this.charges.get(holdId);
    if (!charge) return false;
    if (deliveredTokens !== undefined) charge.deliveredTokens = Math.max(charge.deliveredTokens, deliveredTokens);
    charge.updatedAt = now;
    this.dirty.add(holdId);
    return true;
  }

  /** A row the last process left that is not released or settled yet (nor on its way to be). */
  isOrphan(holdId: string): boolean {
    return this.stored.has(holdId) && !this.charges.has(holdId) && !this.dirty.has(holdId);
  }

  /** A hold went without a settle (released or expired). True when its row has to go too. */
  dropped(holdId: string): boolean {
    this.charges.delete(holdId);
    if (this.stored.has(holdId)) {
      this.dirty.add(holdId);
      return true;
    }
    this.dirty.delete(holdId);
    return false;
  }

  /**
   * Inside a transaction: writes the row of each changed hold that is still live (`live` gives it),
   * and deletes the row of each one that is gone. A hold being settled keeps its row as it is, for
   * its settle's own transaction to delete.
   */
  write(live: (holdId: string) => Hold | undefined, settling: (holdId: string) => boolean): JournalWrite {
    const done: JournalWrite = { written: [], deleted: [] };
    for (const id of this.dirty) {
      if (settling(id)) continue;
      const hold = live(id);
      const charge = this.charges.get(id);
      if (hold && charge) {
        const { subject } = hold;
        if (this.stored.has(id)) this.s.update.run(hold.tokens, hold.micros, hold.outputTokens, hold.expiresAt, charge.deliveredTokens, charge.updatedAt, id);
        else this.s.insert.run(id, subject.userId, subject.projectId, subject.keyId, hold.tokens, hold.micros, hold.outputTokens, hold.createdAt, hold.expiresAt, charge.pendingJson, charge.deliveredTokens, charge.updatedAt);
        done.written.push(id);
      } else {
        if (this.stored.has(id)) this.s.delete.run(id);
        done.deleted.push(id);
      }
    }
    return done;
  }

  /** After the transaction of `write` committed. */
  committed(done: JournalWrite): void {
    for (const id of done.written) {
      this.stored.add(id);
      this.dirty.delete(id);
    }
    for (const id of done.deleted) {
      this.stored.delete(id);
      this.dirty.delete(id);
    }
  }

  /** Inside a settle's transaction: the hold's row goes with the entry that charges it. */
  settle(holdId: string): void {
    if (this.stored.has(holdId)) this.s.delete.run(holdId);
  }

  /** After a settle's transaction committed. */
  settled(holdId: string): void {
    this.charges.delete(holdId);
    this.dirty.delete(holdId);
    this.stored.delete(holdId);
  }
}
