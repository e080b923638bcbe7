import type { Database } from 'better-sqlite3';

/** A schema step: SQL, or (for what SQL cannot say) a function run in the step's transaction. */
type Migration = string | ((db: Database) => void);

/**
 * Schema versions, applied in order and recorded in `PRAGMA user_version`. Append only: a
 * released migration never changes. Money is integer micro-dollars; times are epoch milliseconds.
 */
const MIGRATIONS: readonly Migration[] = [
  /* 1: the core */ `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id TEXT REFERENCES projects(id),
    created_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    service     INTEGER NOT NULL CHECK (service IN (0, 1)),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
  ) STRICT;
  CREATE INDEX api_keys_user ON api_keys(user_id);

  -- One budget per scope and period; config defaults are not stored, they fill the gaps.
  CREATE TABLE budgets (
    id            TEXT PRIMARY KEY,
    scope         TEXT NOT NULL,
    period        TEXT NOT NULL,
    window        TEXT NOT NULL,  -- JSON WindowSpec
    limit_tokens  INTEGER CHECK (limit_tokens >= 0),
    limit_micros  INTEGER CHECK (limit_micros >= 0),
    thresholds    TEXT,           -- JSON array, NULL = the config's
    on_limit      TEXT NOT NULL CHECK (on_limit IN ('reject', 'downgrade', 'alert-only')),
    downgrade_to  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (scope, period),
    CHECK (limit_tokens IS NOT NULL OR limit_micros IS NOT NULL)
  ) STRICT;

  -- Holds (reservations of requests in flight) are not here: one process owns this file, so they
  -- live in its memory and die with it, which is exactly "cleared on start-up" (see SqliteStore).

  -- Settled usage per budget and bucket: a cache of the ledger, exact by construction (a bucket is
  -- seeded from the ledger when first touched, then incremented in the settling transaction).
  CREATE TABLE usage_counters (
    budget_key   TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bucket_end   INTEGER,          -- NULL for total
    retires_at   INTEGER,          -- when no window reads it any more; NULL = never
    tokens       INTEGER NOT NULL,
    micros       INTEGER NOT NULL,
    PRIMARY KEY (budget_key, bucket_start)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX usage_counters_retire ON usage_counters(retires_at) WHERE retires_at IS NOT NULL;

  CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    request_id       TEXT NOT NULL UNIQUE,
    at               INTEGER NOT NULL,
    user_id          TEXT NOT NULL,
    project_id       TEXT,
    key_id           TEXT NOT NULL,
    model            TEXT NOT NULL,
    input_tokens     INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens    INTEGER NOT NULL CHECK (output_tokens >= 0),
    cached_tokens    INTEGER NOT NULL CHECK (cached_tokens >= 0),
    reasoning_tokens INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
    cost_micros      INTEGER NOT NULL CHECK (cost_micros >= 0),
    source           TEXT NOT NULL CHECK (source IN ('upstream', 'estimated')),
    outcome          TEXT NOT NULL,
    latency_ms       INTEGER NOT NULL,
    session_id       TEXT,
    tags             TEXT            -- JSON object, NULL when none
  ) STRICT;
  CREATE INDEX ledger_at ON ledger(at);
  CREATE INDEX ledger_user_at ON ledger(user_id, at);
  CREATE INDEX ledger_project_at ON ledger(project_id, at) WHERE project_id IS NOT NULL;
  CREATE INDEX ledger_key_at ON ledger(key_id, at);
  `,
  /* 2: alerts and their outbox */ `
  -- One row per budget, window and threshold ever crossed: the UNIQUE constraint is what makes an
  -- alert fire once, whoever settles the request that crosses it. Written in the settling
  -- transaction, so an alert exists exactly when the usage that caused it does.
  CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    budget_key   TEXT NOT NULL,
    scope        TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('threshold', 'projected')),
    threshold    INTEGER NOT NULL,   -- percent; 0 for 'projected'
    fired_at     INTEGER NOT NULL,
    payload      TEXT NOT NULL,      -- JSON AlertEvent, as channels receive it
    UNIQUE (budget_key, window_start, kind, threshold)
  ) STRICT;
  CREATE INDEX alerts_fired ON alerts(fired_at);

  -- The outbox: one row per alert and channel, until delivered. Retried with backoff; kept after
  -- delivery for audit.
  CREATE TABLE alert_deliveries (
    alert_id        TEXT NOT NULL REFERENCES alerts(id),
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    PRIMARY KEY (alert_id, channel)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX alert_deliveries_due ON alert_deliveries(next_attempt_at) WHERE state = 'pending';
  `,
  /* 3: usage reports */ `
  -- Covers every column a usage report reads, so a report over a time range scans this index alone
  -- instead of looking up each ledger row (measured in bench/reports.bench.ts). It replaces
  -- ledger_at, which is its prefix, so a settle still maintains five ledger indexes.
  CREATE INDEX ledger_report ON ledger(at, user_id, project_id, key_id, model,
    input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros);
  DROP INDEX ledger_at;
  `,
  /* 4: anomaly alerts, and the ledger's rollup for retention */ `
  -- SQLite cannot change a CHECK in place: the alerts table is rebuilt (migrate() turns foreign keys
  -- off around it and checks them before committing), with the same columns, UNIQUE and index.
  CREATE TABLE alerts_new (
    id           TEXT PRIMARY KEY,
    budget_key   TEXT NOT NULL,      -- for 'anomaly': the subject's scope + '|anomaly'
    scope        TEXT NOT NULL,
    window_start INTEGER NOT NULL,   -- for 'anomaly': the hour it fired in (once per subject and hour)
    kind         TEXT NOT NULL CHECK (kind IN ('threshold', 'projected', 'anomaly')),
    threshold    INTEGER NOT NULL,   -- percent; 0 for 'projected' and 'anomaly'
    fired_at     INTEGER NOT NULL,
    payload      TEXT NOT NULL,
    UNIQUE (budget_key, window_start, kind, threshold)
  ) STRICT;
  INSERT INTO alerts_new SELECT id, budget_key, scope, window_start, kind, threshold, fired_at, payload FROM alerts;
  DROP TABLE alerts;
  ALTER TABLE alerts_new RENAME TO alerts;
  CREATE INDEX alerts_fired ON alerts(fired_at);

  -- Ledger entries past the retention age, summed per 15-minute slot and user, project, key and
  -- model. Every IANA zone in use today is offset from UTC by whole quarter hours, so any local day,
  -- week or month (reports, calendar budgets) starts on a slot boundary and sums stay exact.
  -- project_id is '' for none (not NULL), so the primary key can merge two batches of one slot.
  CREATE TABLE ledger_rollup (
    slot_at          INTEGER NOT NULL,  -- start of the slot, epoch ms
    user_id          TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    model            TEXT NOT NULL,
    requests         INTEGER NOT NULL,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    cached_tokens    INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_micros      INTEGER NOT NULL,
    latency_ms       INTEGER NOT NULL,
    PRIMARY KEY (slot_at, user_id, project_id, key_id, model)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX ledger_rollup_user ON ledger_rollup(user_id, slot_at);
  CREATE INDEX ledger_rollup_project ON ledger_rollup(project_id, slot_at);
  CREATE INDEX ledger_rollup_key ON ledger_rollup(key_id, slot_at);
  `,
  /* 5: holds kept in the file for recovery after a crash; the ledger's overrun count and recovered
     entries; overrun alerts */ (db) => {
    db.exec(`
    -- The holds of live requests that carry a pending charge, so that when the process dies they are
    -- settled at their last count on the next start (source 'recovered') instead of vanishing.
    -- Admission never reads this table: holds are decided in memory (see HoldBook), and written here
    -- in the group commits that settles use (see SqliteStore). A row left when the process starts is
    -- the hold of a request that died with the last one.
    CREATE TABLE holds (
      id               TEXT PRIMARY KEY,
      user_id          TEXT NOT NULL,
      project_id       TEXT,
      key_id           TEXT NOT NULL,
      tokens           INTEGER NOT NULL,
      micros           INTEGER NOT NULL,
      output_tokens    INTEGER NOT NULL,  -- the output allowance granted so far
      created_at       INTEGER NOT NULL,
      expires_at       INTEGER NOT NULL,
      pending          TEXT NOT NULL,     -- JSON PendingCharge
      delivered_tokens INTEGER NOT NULL,  -- output counted when the hold last grew
      updated_at       INTEGER NOT NULL   -- when it last grew (or was taken)
    ) STRICT, WITHOUT ROWID;

    -- Output charged beyond the request's allowance (an upstream that ignored its limit).
    ALTER TABLE ledger ADD COLUMN overrun_tokens INTEGER NOT NULL DEFAULT 0 CHECK (overrun_tokens >= 0);
    `);
    // Only widened, so every stored row still passes: the definitions are edited in place rather than
    // the tables rebuilt (see widenCheck). Rebuilding a 1M-row ledger and its five indexes took 9 s
    // and a 224 MB WAL on the bench machine, all of it before the server could start; the edit takes
    // a millisecond at any size. outcome has no CHECK: 'upstream_error' and 'interrupted' need none.
    widenCheck(db, 'ledger', "source IN ('upstream', 'estimated')", "source IN ('upstream', 'estimated', 'recovered')");
    widenCheck(db, 'alerts', "kind IN ('threshold', 'projected', 'anomaly')", "kind IN ('threshold', 'projected', 'anomaly', 'overrun')");
  },
  /* 6: users' external ids (a LobeChat server's ids for its users), and a key's refusal style */ `
  -- An id another system gives a person (e.g. LobeChat's user_2ab…): a service key naming it charges
  -- user_id. The primary key makes each external id one user's.
  CREATE TABLE user_external_ids (
    external_id TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    linked_at   INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX user_external_ids_user ON user_external_ids(user_id);

  -- How the proxy answers this key's refusals on chat endpoints; NULL: the config's proxy.refusalStyle.
  ALTER TABLE api_keys ADD COLUMN refusal_style TEXT CHECK (refusal_style IN ('error', 'answer'));
  `,
  /* 7: cache writes, a token class priced apart (Anthropic's 5-minute and 1-hour cache writes) */ `
  -- Parts of input_tokens, as cached_tokens (reads) is. Existing rows wrote no cache: 0.
  ALTER TABLE ledger ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0);
  -- Of cache_write_tokens, those written for an hour.
  ALTER TABLE ledger ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_1h_tokens >= 0);
  ALTER TABLE ledger_rollup ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE ledger_rollup ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;

  -- Reports sum cache writes too: the covering index of migration 3 is rebuilt with the column, so a
  -- report still reads the index alone. A one-time cost at the upgrade (an index build over the
  -- ledger), paid before the server starts, instead of a row lookup per entry in every report.
  DROP INDEX ledger_report;
  CREATE INDEX ledger_report ON ledger(at, user_id, project_id, key_id, model,
    input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros);
  `,
  /* 8: budgets limited to some models or routing to others; the upstream that served each entry */ `
  -- A budget may count and limit some models only (JSON array of ids and globs; NULL: every model);
  -- that set is part of its identity, written into period (see budgetPeriod), so the one-budget-per-
  -- scope-and-period rule keeps holding. fallback: JSON array of {at, to}; NULL: none.
  ALTER TABLE budgets ADD COLUMN models TEXT;
  ALTER TABLE budgets ADD COLUMN fallback TEXT;

  -- The upstream (provider account) that served an entry, so its own budgets (scope upstream:NAME)
  -- count what it served. NULL for entries written before, and for those served by no upstream.
  -- No index of its own: an upstream's counter is counted from the ledger once per bucket, through
  -- the time index, as the global budget's is.
  ALTER TABLE ledger ADD COLUMN upstream TEXT;

  -- The rollup keeps the upstream too: its primary key grows by it ('' for none), so the table is
  -- rebuilt (SQLite cannot change a primary key in place); it holds one row per quarter hour and
  -- subject, far fewer than the ledger.
  CREATE TABLE ledger_rollup_new (
    slot_at               INTEGER NOT NULL,
    user_id               TEXT NOT NULL,
    project_id            TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    upstream              TEXT NOT NULL DEFAULT '',
    requests              INTEGER NOT NULL,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cached_tokens         INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_micros           INTEGER NOT NULL,
    latency_ms            INTEGER NOT NULL,
    cache_write_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (slot_at, user_id, project_id, key_id, model, upstream)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO ledger_rollup_new (slot_at, user_id, project_id, key_id, model, requests, input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_micros, latency_ms, cache_write_tokens, cache_write_1h_tokens)
  SELECT slot_at, user_id, project_id, key_id, model, requests, input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_micros, latency_ms, cache_write_tokens, cache_write_1h_tokens FROM ledger_rollup;
  DROP TABLE ledger_rollup;
  ALTER TABLE ledger_rollup_new RENAME TO ledger_rollup;
  CREATE INDEX ledger_rollup_user ON ledger_rollup(user_id, slot_at);
  CREATE INDEX ledger_rollup_project ON ledger_rollup(project_id, slot_at);
  CREATE INDEX ledger_rollup_key ON ledger_rollup(key_id, slot_at);
  CREATE INDEX ledger_rollup_upstream ON ledger_rollup(upstream, slot_at) WHERE upstream <> '';
  `,
  /* 9: rate limits set per subject over the admin API, and the rate windows a clean shutdown leaves */ `
  -- A subject's limits over the config's for its kind: JSON {field: n | null} (absent: the config's, null: none).
  CREATE TABLE rate_limits (
    scope      TEXT PRIMARY KEY,  -- 'key:ID', 'user:ID' or 'project:ID'
    limits     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  -- The store counts rate windows in memory (admission never waits for the disk); a clean shutdown
  -- writes them here and the next start reads them back, so a restart does not hand out a fresh day.
  CREATE TABLE rate_windows (
    scope        TEXT NOT NULL,
    span         TEXT NOT NULL CHECK (span IN ('minute', 'hour', 'day')),
    window_start INTEGER NOT NULL,
    requests     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    PRIMARY KEY (scope, span)
  );
  `,
  /* 10: response-cache hits in the ledger (source 'cache') and what they saved */ (db) => {
    db.exec(`
    -- What a hit did not cost: the first answer's tokens and cost minus the hit's own charge. 0 for
    -- every other entry, and for every existing row.
    ALTER TABLE ledger ADD COLUMN saved_tokens INTEGER NOT NULL DEFAULT 0 CHECK (saved_tokens >= 0);
    ALTER TABLE ledger ADD COLUMN saved_micros INTEGER NOT NULL DEFAULT 0 CHECK (saved_micros >= 0);
    ALTER TABLE ledger_rollup ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ledger_rollup ADD COLUMN saved_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ledger_rollup ADD COLUMN saved_micros INTEGER NOT NULL DEFAULT 0;

    -- Reports count hits and sum the savings: the covering index is rebuilt with source and the two
    -- columns, so a report still reads the index alone (a one-time index build at the upgrade).
    DROP INDEX ledger_report;
    CREATE INDEX ledger_report ON ledger(at, user_id, project_id, key_id, model,
      input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros, source, saved_tokens, saved_micros);
    `);
    // Widened in place, as migration 5 did: every stored row still passes.
    widenCheck(db, 'ledger', "source IN ('upstream', 'estimated', 'recovered')", "source IN ('upstream', 'estimated', 'recovered', 'cache')");
  },
  /* 11: grants, extra room on a budget for a while (an approved increase request, or an admin's) */ `
  -- Kept for audit after they end: admission only counts a grant while starts_at <= now < ends_at.
  CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    budget_key  TEXT NOT NULL,   -- the budget's key: scope, period and models
    scope       TEXT NOT NULL,
    tokens      INTEGER NOT NULL CHECK (tokens >= 0),
    micros      INTEGER NOT NULL CHECK (micros >= 0),
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL CHECK (ends_at > starts_at),
    decided_by  TEXT NOT NULL CHECK (decided_by IN ('admin', 'link', 'policy')),
    request_id  TEXT,
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    CHECK (tokens > 0 OR micros > 0)
  ) STRICT;
  CREATE INDEX grants_scope ON grants(scope, created_at);
  CREATE INDEX grants_ends ON grants(ends_at);
  `,
  /* 12: increase requests, and their alerts (kinds 'request' and 'request_decided') */ (db) => {
    db.exec(`
    -- A user's request for more room on one budget. Kept after its decision, for audit: who decided
    -- (decided_by), when, what was granted (it may differ from what was asked) and the grant made.
    CREATE TABLE quota_requests (
      id             TEXT PRIMARY KEY,
      user_id        TEXT NOT NULL REFERENCES users(id),
      key_id         TEXT NOT NULL,
      scope          TEXT NOT NULL,   -- the budget's scope
      budget_key     TEXT NOT NULL,
      amount_tokens  INTEGER NOT NULL CHECK (amount_tokens >= 0),
      amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
      reason         TEXT,
      state          TEXT NOT NULL CHECK (state IN ('open', 'approved', 'denied')),
      created_at     INTEGER NOT NULL,
      decided_at     INTEGER,
      decided_by     TEXT CHECK (decided_by IN ('admin', 'link', 'policy')),
      granted_tokens INTEGER CHECK (granted_tokens >= 0),
      granted_micros INTEGER CHECK (granted_micros >= 0),
      grant_id       TEXT,
      seen_at        INTEGER,        -- when the requester was told the decision
      CHECK (amount_tokens > 0 OR amount_micros > 0),
      CHECK ((state = 'open') = (decided_at IS NULL) AND (state = 'open') = (decided_by IS NULL)),
      CHECK ((state = 'approved') = (grant_id IS NOT NULL))
    ) STRICT;
    -- At most one open request per user and budget: a second is refused until the first is decided.
    CREATE UNIQUE INDEX quota_requests_one_open ON quota_requests(user_id, budget_key) WHERE state = 'open';
    CREATE INDEX quota_requests_state ON quota_requests(state, created_at);
    CREATE INDEX quota_requests_user ON quota_requests(user_id, created_at);
    `);
    // Widened in place, as migration 5 did: every stored row still passes.
    widenCheck(db, 'alerts', "kind IN ('threshold', 'projected', 'anomaly', 'overrun')", "kind IN ('threshold', 'projected', 'anomaly', 'overrun', 'request', 'request_decided')");
  },
];

/**
 * Replaces `from` by `to` in a table's CREATE statement, for a change that no stored row can fail
 * (a CHECK that accepts more): SQLite's documented procedure for schema changes that leave the
 * stored content as it is (https://sqlite.org/lang_altertable.html#otheralter, the simpler one).
 * Runs inside the migration's transaction, so an edit that does not parse rolls back with it. The
 * writable schema is only open for this statement; better-sqlite3's defensive mode forbids it
 * otherwise.
 */
function widenCheck(db: Database, table: string, from: string, to: string): void {
  const found = db.prepare<[string], { sql: string }>(`SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(table);
  if (!found || found.sql.split(from).length !== 2) throw new Error(`migration: ${table} does not have the constraint "${from}" it should`);
  const version = db.pragma('schema_version', { simple: true }) as number;
  db.unsafeMode(true);
  db.pragma('writable_schema = ON');
  try {
    db.prepare(`UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?`).run(found.sql.replace(from, to), table);
    // A new schema version makes every connection read the edited definition.
    db.pragma(`schema_version = ${version + 1}`);
  } finally {
    db.pragma('writable_schema = OFF');
    db.unsafeMode(false);
  }
  // Parses the new definition now, inside the transaction, so a bad one fails the migration.
  db.prepare(`SELECT * FROM ${table} LIMIT 0`).all();
}

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to the newest schema, each step in its own transaction. Foreign keys are off
 * meanwhile (a pragma that cannot change inside a transaction) so a table can be rebuilt under its
 * children, as SQLite's own ALTER TABLE procedure does; each step is checked before it commits.
 * `target` (tests) stops at an older version.
 */
export function migrate(db: Database, target = MIGRATIONS.length): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema ${current} is newer than this lobe-quota (${MIGRATIONS.length}); upgrade lobe-quota`);
  }
  if (current >= target) return;
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  db.pragma('foreign_keys = OFF');
  try {
    MIGRATIONS.slice(current, target).forEach((step, i) => {
      db.transaction(() => {
        if (typeof step === 'string') db.exec(step);
        else step(db);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`migration ${current + i + 1} broke ${broken.length} foreign keys`);
        db.pragma(`user_version = ${current + i + 1}`);
      })();
    });
  } finally {
    db.pragma(`foreign_keys = ${foreignKeys === 1 ? 'ON' : 'OFF'}`);
  }
}
