import Database from 'better-sqlite3';
import type { SealedAnswer } from './answer-crypto.js';

const TOUCH_EVERY_MS = 1_000;

interface PendingRow {
  lookupId: Buffer;
  answer: SealedAnswer;
  now: number;
  lastUsedAt: number;
  expiresAt: number;
  maxBytes: number;
}

/**
 * The cache's own SQLite file (`response-cache.sqlite`), apart from the Store: answers are local to
 * an instance, and their churn never touches the ledger's file. A row holds nothing readable: the
 * lookup id and the sealed answer are derived from the request (answer-crypto.ts), and the times
 * say only when. Deleted rows are overwritten (secure_delete), so an expired answer does not
 * linger in the file's free pages.
 */
export class CacheTable {
  private readonly db: Database.Database;
  private readonly s;
  /** The sealed bytes stored, kept in step with every write (summed once at open). */
  private bytes: number;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // A lost write only loses a cached answer, which the next request stores again.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('secure_delete = ON');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS answers (
        lookup_id    BLOB NOT NULL UNIQUE,
        nonce        BLOB NOT NULL,
        sealed       BLOB NOT NULL,   -- AES-256-GCM ciphertext, then its tag
        size         INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS answers_lru ON answers(last_used_at);
      CREATE INDEX IF NOT EXISTS answers_expiry ON answers(expires_at);
    `);
    this.s = {
      find: this.db.prepare<[Buffer, number], { nonce: Buffer; sealed: Buffer; last_used_at: number }>(
        'SELECT nonce, sealed, last_used_at FROM answers WHERE lookup_id = ? AND expires_at > ?',
      ),
      touch: this.db.prepare<[number, Buffer], never>('UPDATE answers SET last_used_at = ? WHERE lookup_id = ?'),
      sizeOf: this.db.prepare<[Buffer], { size: number }>('SELECT size FROM answers WHERE lookup_id = ?'),
      put: this.db.prepare<[Buffer, Buffer, Buffer, number, number, number, number], never>(
        `INSERT INTO answers (lookup_id, nonce, sealed, size, created_at, expires_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (lookup_id) DO UPDATE SET nonce = excluded.nonce, sealed = excluded.sealed, size = excluded.size,
           created_at = excluded.created_at, expires_at = excluded.expires_at, last_used_at = excluded.last_used_at`,
      ),
      expire: this.db.prepare<[number], { size: number }>('DELETE FROM answers WHERE expires_at <= ? RETURNING size'),
      // One row at a time: the one just stored is the most recently used, and goes last.
      evictOldest: this.db.prepare<[], { size: number }>(
        'DELETE FROM answers WHERE rowid = (SELECT rowid FROM answers ORDER BY last_used_at, rowid LIMIT 1) RETURNING size',
      ),
      total: this.db.prepare<[], { bytes: number }>('SELECT COALESCE(SUM(size), 0) AS bytes FROM answers'),
      count: this.db.prepare<[], { rows: number }>('SELECT COUNT(*) AS rows FROM answers'),
    };
    this.bytes = this.s.total.get()?.bytes ?? 0;
  }

  /** The live row of this id, marked as used now (its place in the LRU order). */
  get(lookupId: Buffer, now: number): SealedAnswer | null {
    const queued = this.pending.get(lookupId.toString('hex'));
    if (queued) {
      if (queued.expiresAt <= now) return null;
      queued.lastUsedAt = now;
      return queued.answer;
    }
    const row = this.s.find.get(lookupId, now);
    if (!row) return null;
    // The LRU order to the second: an answer hit many times a second is written once a second.
    if (now - row.last_used_at >= TOUCH_EVERY_MS) this.s.touch.run(now, lookupId);
    return { nonce: row.nonce, sealed: row.sealed };
  }

  /**
   * Stores a row (replacing one of the same id), then drops expired rows and the least recently
   * used until at most `maxBytes` remain. Rows stored in one turn of the event loop are written in
   * one transaction a turn later (a commit costs more than the rest of storing an answer); until
   * then `get` finds them in memory. A turn later is still before the next request is read.
   */
  put(lookupId: Buffer, answer: SealedAnswer, now: number, expiresAt: number, maxBytes: number): void {
    this.pending.set(lookupId.toString('hex'), { lookupId, answer, now, lastUsedAt: now, expiresAt, maxBytes });
    if (this.pending.size === 1) setImmediate(() => this.flush());
  }

  private readonly pending = new Map<string, PendingRow>();

  /** Writes the rows `put` queued. */
  flush(): void {
    if (this.pending.size === 0 || !this.db.open) return;
    const rows = [...this.pending.values()];
    this.pending.clear();
    this.db.transaction(() => {
      for (const { lookupId, answer, now, lastUsedAt, expiresAt } of rows) {
        const size = answer.nonce.length + answer.sealed.length;
        const previous = this.s.sizeOf.get(lookupId)?.size ?? 0;
        this.s.put.run(lookupId, answer.nonce, answer.sealed, size, now, expiresAt, lastUsedAt);
        this.bytes += size - previous;
      }
      const last = rows.at(-1) as PendingRow;
      for (const { size: freed } of this.s.expire.all(last.now)) this.bytes -= freed;
      while (this.bytes > last.maxBytes) {
        const evicted = this.s.evictOldest.get();
        if (!evicted) break;
        this.bytes -= evicted.size;
      }
    })();
  }

  /** Rows and sealed bytes held (for metrics and tests). */
  usage(): { rows: number; bytes: number } {
    this.flush();
    return { rows: this.s.count.get()?.rows ?? 0, bytes: this.bytes };
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
