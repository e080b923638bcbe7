/**
 * Migration 9: grants, extra room on a budget for a while (SQLite's migration 11). Admission adds a
 * grant to its budget's limits while `starts_at <= now < ends_at`; rows stay after that, for audit.
 * lq_budget_fingerprint (migration 2) is replaced by one that also covers the grants of the scopes,
 * so an instance that resolved a scope's budgets before a grant was made is told it is stale by the
 * metering function (under the scope locks) and reads them again: a grant applies from the next
 * admission on, on every instance. With no grant, the fingerprint is the one migration 2 computed.
 *
 * Released with migration 9: never edited, a change is a new migration.
 */
export const GRANTS_SQL = `
  CREATE TABLE grants (
    id          TEXT COLLATE "C" PRIMARY KEY,
    budget_key  TEXT COLLATE "C" NOT NULL,
    scope       TEXT COLLATE "C" NOT NULL,
    tokens      BIGINT NOT NULL CHECK (tokens >= 0),
    micros      BIGINT NOT NULL CHECK (micros >= 0),
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    decided_by  TEXT COLLATE "C" NOT NULL CHECK (decided_by IN ('admin', 'link', 'policy')),
    request_id  TEXT COLLATE "C",
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK (tokens > 0 OR micros > 0)
  );
  CREATE INDEX grants_scope ON grants(scope, created_at);

  CREATE OR REPLACE FUNCTION lq_budget_fingerprint(p_scopes text[]) RETURNS text LANGUAGE sql STABLE SET jit = off SET enable_seqscan = off AS $fn$
    SELECT COALESCE((SELECT md5(string_agg(b::text, ',' ORDER BY b.scope, b.period)) FROM budgets b WHERE b.scope = ANY(p_scopes)), '')
      || COALESCE((SELECT md5(string_agg(g.id, ',' ORDER BY g.id)) FROM grants g WHERE g.scope = ANY(p_scopes)), '')
  $fn$;
`;
