import type { Database as Db, Statement } from 'better-sqlite3';
import { quotaRequestRow, toQuotaRequest, type QuotaRequestRow } from '../sql/rows.js';
import type { QuotaRequest, QuotaRequestState } from '../types.js';

/** The statements of `quota_requests`; the store runs them inside its own transactions. */
export class QuotaRequestTable {
  private readonly insertRow: Statement;
  private readonly getRow: Statement<[string], QuotaRequestRow>;
  private readonly openRow: Statement<[string, string], { id: string }>;
  private readonly listRows: Statement<[{ state: string | null; user: string | null }], QuotaRequestRow>;
  private readonly decideRow: Statement;
  private readonly unseenRows: Statement<[string], QuotaRequestRow>;
  private readonly seeRow: Statement<[number, string]>;

  constructor(db: Db) {
    this.insertRow = db.prepare(
      `INSERT INTO quota_requests (id, user_id, key_id, scope, budget_key, amount_tokens, amount_micros, reason, state, created_at,
         decided_at, decided_by, granted_tokens, granted_micros, grant_id, seen_at)
       VALUES (@id, @user_id, @key_id, @scope, @budget_key, @amount_tokens, @amount_micros, @reason, @state, @created_at,
         @decided_at, @decided_by, @granted_tokens, @granted_micros, @grant_id, @seen_at)`,
    );
    this.getRow = db.prepare('SELECT * FROM quota_requests WHERE id = ?');
    this.openRow = db.prepare("SELECT id FROM quota_requests WHERE user_id = ? AND budget_key = ? AND state = 'open'");
    this.listRows = db.prepare(
      `SELECT * FROM quota_requests WHERE (@state IS NULL OR state = @state) AND (@user IS NULL OR user_id = @user) ORDER BY created_at DESC, id DESC`,
    );
    this.decideRow = db.prepare(
      `UPDATE quota_requests SET state = @state, decided_at = @decided_at, decided_by = @decided_by,
         granted_tokens = @granted_tokens, granted_micros = @granted_micros, grant_id = @grant_id
       WHERE id = @id AND state = 'open'`,
    );
    this.unseenRows = db.prepare("SELECT * FROM quota_requests WHERE user_id = ? AND state <> 'open' AND seen_at IS NULL ORDER BY decided_at, id");
    this.seeRow = db.prepare("UPDATE quota_requests SET seen_at = ? WHERE id = ? AND state <> 'open' AND seen_at IS NULL");
  }

  hasOpen(userId: string, budgetKey: string): boolean {
    return this.openRow.get(userId, budgetKey) !== undefined;
  }

  insert(request: QuotaRequest): void {
    this.insertRow.run(quotaRequestRow(request));
  }

  get(id: string): QuotaRequest | null {
    const row = this.getRow.get(id);
    return row ? toQuotaRequest(row) : null;
  }

  list(state: QuotaRequestState | null, userId: string | null): QuotaRequest[] {
    return this.listRows.all({ state, user: userId }).map(toQuotaRequest);
  }

  /** False when it was no longer open. */
  decide(request: QuotaRequest): boolean {
    return this.decideRow.run(quotaRequestRow(request)).changes === 1;
  }

  unseen(userId: string): QuotaRequest[] {
    return this.unseenRows.all(userId).map(toQuotaRequest);
  }

  /** The ids this call marked (not those marked before). */
  see(ids: readonly string[], now: number): string[] {
    return ids.filter((id) => this.seeRow.run(now, id).changes === 1);
  }
}
