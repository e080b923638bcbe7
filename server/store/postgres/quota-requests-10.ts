/**
 * Migration 10: increase requests (SQLite's migration 12), and the alert kinds that announce one
 * ('request', with its signed links) and its decision ('request_decided'). A request is decided by
 * `UPDATE … WHERE state = 'open'` in the transaction that makes its grant, so it is granted once.
 *
 * Released with migration 10: never edited, a change is a new migration.
 */
export const QUOTA_REQUESTS_SQL = `
  CREATE TABLE quota_requests (
    id             TEXT COLLATE "C" PRIMARY KEY,
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    key_id         TEXT COLLATE "C" NOT NULL,
    scope          TEXT COLLATE "C" NOT NULL,
    budget_key     TEXT COLLATE "C" NOT NULL,
    amount_tokens  BIGINT NOT NULL CHECK (amount_tokens >= 0),
    amount_micros  BIGINT NOT NULL CHECK (amount_micros >= 0),
    reason         TEXT,
    state          TEXT COLLATE "C" NOT NULL CHECK (state IN ('open', 'approved', 'denied')),
    created_at     BIGINT NOT NULL,
    decided_at     BIGINT,
    decided_by     TEXT COLLATE "C" CHECK (decided_by IN ('admin', 'link', 'policy')),
    granted_tokens BIGINT CHECK (granted_tokens >= 0),
    granted_micros BIGINT CHECK (granted_micros >= 0),
    grant_id       TEXT COLLATE "C",
    seen_at        BIGINT,
    CHECK (amount_tokens > 0 OR amount_micros > 0),
    CHECK ((state = 'open') = (decided_at IS NULL) AND (state = 'open') = (decided_by IS NULL)),
    CHECK ((state = 'approved') = (grant_id IS NOT NULL))
  );
  CREATE UNIQUE INDEX quota_requests_one_open ON quota_requests(user_id, budget_key) WHERE state = 'open';
  CREATE INDEX quota_requests_state ON quota_requests(state, created_at);
  CREATE INDEX quota_requests_user ON quota_requests(user_id, created_at);

  ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
  ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('threshold', 'projected', 'anomaly', 'overrun', 'request', 'request_decided')) NOT VALID;
`;
