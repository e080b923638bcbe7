import { quotaRequestRow, toQuotaRequest, type QuotaRequestRow } from '../sql/rows.js';
import type { QuotaRequest, QuotaRequestState } from '../types.js';
import type { Tx } from './pg-pool.js';

/** The statements of `quota_requests` on PostgreSQL; the store runs them in its transactions. */

const COLUMNS = [
  'id', 'user_id', 'key_id', 'scope', 'budget_key', 'amount_tokens', 'amount_micros', 'reason', 'state', 'created_at',
  'decided_at', 'decided_by', 'granted_tokens', 'granted_micros', 'grant_id', 'seen_at',
] as const;

/** False when the user has an open request on that budget (the partial unique index). */
export async function insertRequest(tx: Tx, request: QuotaRequest): Promise<boolean> {
  const row = quotaRequestRow(request);
  const inserted = await tx.query(
    `INSERT INTO quota_requests (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING`,
    COLUMNS.map((c) => row[c]),
  );
  return inserted.rowCount === 1;
}

export async function getRequest(tx: Tx, id: string): Promise<QuotaRequest | null> {
  const found = await tx.query<QuotaRequestRow>('SELECT * FROM quota_requests WHERE id = $1', [id]);
  const row = found.rows[0];
  return row ? toQuotaRequest(row) : null;
}

export async function listRequests(tx: Tx, state: QuotaRequestState | null, userId: string | null): Promise<QuotaRequest[]> {
  const found = await tx.query<QuotaRequestRow>(
    'SELECT * FROM quota_requests WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR user_id = $2) ORDER BY created_at DESC, id DESC',
    [state, userId],
  );
  return found.rows.map(toQuotaRequest);
}

/**
 * Decides the request if it is still open. Of two transactions deciding one request at once, the
 * second waits for the first's row lock, then finds it no longer open (READ COMMITTED re-checks the
 * WHERE on the new row) and changes nothing.
 */
export async function decideRequest(tx: Tx, request: QuotaRequest): Promise<boolean> {
  const decided = await tx.query(
    `UPDATE quota_requests SET state = $2, decided_at = $3, decided_by = $4, granted_tokens = $5, granted_micros = $6, grant_id = $7
     WHERE id = $1 AND state = 'open'`,
    [request.id, request.state, request.decidedAt, request.decidedBy, request.grantedTokens, request.grantedMicros, request.grantId],
  );
  return decided.rowCount === 1;
}

export async function unseenRequests(tx: Tx, userId: string): Promise<QuotaRequest[]> {
  const found = await tx.query<QuotaRequestRow>(
    "SELECT * FROM quota_requests WHERE user_id = $1 AND state <> 'open' AND seen_at IS NULL ORDER BY decided_at, id",
    [userId],
  );
  return found.rows.map(toQuotaRequest);
}

/** The ids this call marked (not those marked before, by anyone). */
export async function seeRequests(tx: Tx, ids: readonly string[], now: number): Promise<string[]> {
  const marked = await tx.query<{ id: string }>(
    "UPDATE quota_requests SET seen_at = $2 WHERE id = ANY($1) AND state <> 'open' AND seen_at IS NULL RETURNING id",
    [ids, now],
  );
  return marked.rows.map((r) => r.id);
}
