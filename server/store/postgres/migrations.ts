import type pg from 'pg';
import { METERING_FUNCTIONS_SQL } from './metering-functions.js';
import { MIGRATION_3_SQL } from './metering-functions-3.js';
import { MIGRATION_5_SQL } from './metering-functions-5.js';
import { MIGRATION_6_SQL } from './metering-functions-6.js';
import { RATE_LIMITS_SQL } from './rate-limit-functions.js';
import { MIGRATION_8_SQL } from './metering-functions-8.js';
import { GRANTS_SQL } from './grant-functions.js';
import { QUOTA_REQUESTS_SQL } from './quota-requests-10.js';
import { MIGRATION_11_SQL } from './metering-functions-11.js';
import { MIGRATION_12_SQL } from './metering-functions-12.js';
import { MIGRATION_13_SQL } from './metering-functions-13.js';
import { MIGRATION_14_SQL } from './metering-functions-14.js';
import { MIGRATION_15_SQL } from './hold-rows-15.js';
import { MIGRATION_16_SQL } from './hold-budgets-16.js';
import { quoteIdent } from './pg-pool.js';

/**
 * PostgreSQL schema versions, applied in order and recorded in `schema_version`. Append only: a
 * released migration never changes. The tables mirror SQLite's (see ../sqlite/migrations.ts) at
 * its version 4, plus what several instances need: holds in the database with the instance that
 * owns them, instance heartbeats, one lockable row per budget, and a lease on outbox deliveries.
 * Money is BIGINT micro-dollars; times are BIGINT epoch milliseconds. Text sorts by code point
 * (COLLATE "C", as SQLite's BINARY does), so both stores order ties in reports alike.
 */
const MIGRATIONS: readonly string[] = [
  /* 1: everything SQLite has at version 4, and the multi-instance tables */ `
  CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
  );

  CREATE TABLE projects (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
  );

  CREATE TABLE users (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    project_id TEXT COLLATE "C" REFERENCES projects(id),
    created_at BIGINT NOT NULL
  );

  CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    name        TEXT COLLATE "C" NOT NULL,
    prefix      TEXT COLLATE "C" NOT NULL,
    secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    service     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
  );
  CREATE INDEX api_keys_user ON api_keys(user_id);

  CREATE TABLE budgets (
    id            TEXT COLLATE "C" PRIMARY KEY,
    scope         TEXT COLLATE "C" NOT NULL,
    period        TEXT COLLATE "C" NOT NULL,
    window_spec   TEXT COLLATE "C" NOT NULL,  -- JSON WindowSpec ("window" is a keyword here)
    limit_tokens  BIGINT CHECK (limit_tokens >= 0),
    limit_micros  BIGINT CHECK (limit_micros >= 0),
    thresholds    TEXT COLLATE "C",
    on_limit      TEXT COLLATE "C" NOT NULL CHECK (on_limit IN ('reject', 'downgrade', 'alert-only')),
    downgrade_to  TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (scope, period),
    CHECK (limit_tokens IS NOT NULL OR limit_micros IS NOT NULL)
  );

  -- One row per scope ('user:alice', 'global', …), locked FOR UPDATE by every transaction that
  -- checks or changes the usage of a budget of that scope: admission, extension, settlement and
  -- budget changes. A request locks its scopes in text order, so two transactions never wait on
  -- each other in a cycle.
  CREATE TABLE scope_locks (
    scope TEXT COLLATE "C" PRIMARY KEY
  );

  CREATE TABLE usage_counters (
    budget_key   TEXT COLLATE "C" NOT NULL,
    bucket_start BIGINT NOT NULL,
    bucket_end   BIGINT,
    retires_at   BIGINT,
    tokens       BIGINT NOT NULL,
    micros       BIGINT NOT NULL,
    PRIMARY KEY (budget_key, bucket_start)
  );
  CREATE INDEX usage_counters_retire ON usage_counters(retires_at) WHERE retires_at IS NOT NULL;

  -- Each running lobe-quota process, and when it last said it was alive.
  CREATE TABLE instances (
    id           TEXT COLLATE "C" PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
  );

  -- Holds of requests in flight. A hold goes when its request settles or releases it, when it is
  -- not renewed before expires_at, or when its instance stops beating: any instance clears them.
  CREATE TABLE holds (
    id            TEXT COLLATE "C" PRIMARY KEY,
    instance_id   TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL,
    project_id    TEXT COLLATE "C",
    key_id        TEXT COLLATE "C" NOT NULL,
    tokens        BIGINT NOT NULL CHECK (tokens >= 0),
    micros        BIGINT NOT NULL CHECK (micros >= 0),
    output_tokens BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
  );
  CREATE INDEX holds_expiry ON holds(expires_at);
  CREATE INDEX holds_instance ON holds(instance_id);

  -- What a hold set aside per budget (a budget created while a stream runs joins it with less).
  CREATE TABLE hold_budgets (
    hold_id    TEXT COLLATE "C" NOT NULL REFERENCES holds(id) ON DELETE CASCADE,
    budget_key TEXT COLLATE "C" NOT NULL,
    tokens     BIGINT NOT NULL,
    micros     BIGINT NOT NULL,
    PRIMARY KEY (hold_id, budget_key)
  );
  CREATE INDEX hold_budgets_budget ON hold_budgets(budget_key);

  CREATE TABLE ledger (
    id               BIGSERIAL PRIMARY KEY,
    request_id       TEXT COLLATE "C" NOT NULL UNIQUE,
    at               BIGINT NOT NULL,
    user_id          TEXT COLLATE "C" NOT NULL,
    project_id       TEXT COLLATE "C",
    key_id           TEXT COLLATE "C" NOT NULL,
    model            TEXT COLLATE "C" NOT NULL,
    input_tokens     BIGINT NOT NULL CHECK (input_tokens >= 0),
    output_tokens    BIGINT NOT NULL CHECK (output_tokens >= 0),
    cached_tokens    BIGINT NOT NULL CHECK (cached_tokens >= 0),
    reasoning_tokens BIGINT NOT NULL CHECK (reasoning_tokens >= 0),
    cost_micros      BIGINT NOT NULL CHECK (cost_micros >= 0),
    source           TEXT COLLATE "C" NOT NULL CHECK (source IN ('upstream', 'estimated')),
    outcome          TEXT COLLATE "C" NOT NULL,
    latency_ms       BIGINT NOT NULL,
    session_id       TEXT COLLATE "C",
    tags             TEXT COLLATE "C"
  );
  -- Covers a usage report over a time range (see SQLite's migration 3).
  CREATE INDEX ledger_report ON ledger(at, user_id, project_id, key_id, model)
    INCLUDE (input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros);
  CREATE INDEX ledger_user_at ON ledger(user_id, at);
  CREATE INDEX ledger_project_at ON ledger(project_id, at) WHERE project_id IS NOT NULL;
  CREATE INDEX ledger_key_at ON ledger(key_id, at);

  -- The UNIQUE key makes each alert fire once per budget and window, whichever instance settles
  -- the request that crosses it.
  CREATE TABLE alerts (
    id           TEXT COLLATE "C" PRIMARY KEY,
    budget_key   TEXT COLLATE "C" NOT NULL,
    scope        TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL CHECK (kind IN ('threshold', 'projected', 'anomaly')),
    threshold    INTEGER NOT NULL,
    fired_at     BIGINT NOT NULL,
    payload      TEXT COLLATE "C" NOT NULL,
    UNIQUE (budget_key, window_start, kind, threshold)
  );
  CREATE INDEX alerts_fired ON alerts(fired_at);

  -- The outbox. An instance claims due deliveries (FOR UPDATE SKIP LOCKED) by setting lease_until;
  -- nobody else takes them until the lease runs out, so each is sent once in total unless its
  -- sender dies mid-send.
  CREATE TABLE alert_deliveries (
    alert_id        TEXT COLLATE "C" NOT NULL REFERENCES alerts(id),
    channel         TEXT COLLATE "C" NOT NULL,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT COLLATE "C",
    delivered_at    BIGINT,
    PRIMARY KEY (alert_id, channel)
  );
  CREATE INDEX alert_deliveries_due ON alert_deliveries(next_attempt_at) WHERE state = 'pending';

  CREATE TABLE ledger_rollup (
    slot_at          BIGINT NOT NULL,
    user_id          TEXT COLLATE "C" NOT NULL,
    project_id       TEXT COLLATE "C" NOT NULL,
    key_id           TEXT COLLATE "C" NOT NULL,
    model            TEXT COLLATE "C" NOT NULL,
    requests         BIGINT NOT NULL,
    input_tokens     BIGINT NOT NULL,
    output_tokens    BIGINT NOT NULL,
    cached_tokens    BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_micros      BIGINT NOT NULL,
    latency_ms       BIGINT NOT NULL,
    PRIMARY KEY (slot_at, user_id, project_id, key_id, model)
  );
  CREATE INDEX ledger_rollup_user ON ledger_rollup(user_id, slot_at);
  CREATE INDEX ledger_rollup_project ON ledger_rollup(project_id, slot_at);
  CREATE INDEX ledger_rollup_key ON ledger_rollup(key_id, slot_at);
  `,
  /* 2: reserve, extend, settle and budget states as functions, one round trip each */ METERING_FUNCTIONS_SQL,
  /* 3: holds carry what recovery after a crash needs; the ledger's overrun count and recovered
     entries; overrun alerts (SQLite's migration 5) */ MIGRATION_3_SQL,
  /* 4: users' external ids, and a key's refusal style (SQLite's migration 6) */ `
  CREATE TABLE user_external_ids (
    external_id TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    linked_at   BIGINT NOT NULL
  );
  CREATE INDEX user_external_ids_user ON user_external_ids(user_id);

  ALTER TABLE api_keys ADD COLUMN refusal_style TEXT COLLATE "C" CHECK (refusal_style IN ('error', 'answer'));
  `,
  /* 5: cache writes in the ledger and its rollup (SQLite's migration 7) */ MIGRATION_5_SQL,
  /* 6: budgets of some models, fallback rules, the upstream of each entry (SQLite's migration 8) */ MIGRATION_6_SQL,
  /* 7: rate limits per subject, shared rate windows, and lq_reserve checking them (SQLite's migration 9) */ RATE_LIMITS_SQL,
  /* 8: response-cache hits and their savings in the ledger and its rollup (SQLite's migration 10) */ MIGRATION_8_SQL,
  /* 9: grants, and the budgets' fingerprint covering them (SQLite's migration 11) */ GRANTS_SQL,
  /* 10: increase requests, and the alert kinds 'request' and 'request_decided' (SQLite's migration 12) */ QUOTA_REQUESTS_SQL,
  /* 11: running totals of rolling windows; reservations, extensions and settles in batches */ MIGRATION_11_SQL,
  /* 12: the batches' work set-wise, a statement per step instead of per item */ MIGRATION_12_SQL,
  /* 13: the batch functions given typed columns instead of one jsonb to take apart */ MIGRATION_13_SQL,
  /* 14: the batch functions' windows as text, made jsonb only where a window is counted again */ MIGRATION_14_SQL,
  /* 15: holds settled, released, renewed and grown through their own rows, whatever the statistics */ MIGRATION_15_SQL,
  /* 16: each hold's shares of its budgets on its own row, the reservations kept without triggers */ MIGRATION_16_SQL,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Taken while migrating, so instances starting together migrate once, one after the other. */
const MIGRATION_LOCK = 0x6c71_6d67; // 'lqmg'

/**
 * Creates the schema if needed and applies what is missing, all in one transaction under an
 * advisory lock: a second instance starting at the same moment waits, then finds nothing to do.
 */
export async function migrate(client: pg.ClientBase, schema: string, target = MIGRATIONS.length): Promise<void> {
  await client.query('BEGIN');
  try {
    // A migration (or waiting for another instance's) may take longer than any request should.
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const found = await client.query<{ version: number }>('SELECT version FROM schema_version');
    const current = found.rows[0]?.version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new Error(`database schema ${current} is newer than this lobe-quota (${MIGRATIONS.length}); upgrade lobe-quota`);
    }
    for (const sql of MIGRATIONS.slice(current, target)) await client.query(sql);
    if (found.rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [Math.max(current, target)]);
    else await client.query('UPDATE schema_version SET version = $1', [Math.max(current, target)]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
