import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { quoteIdent } from './pg-pool.js';
import { migrate, PG_SCHEMA_VERSION } from './migrations.js';
import { TEST_DATABASE_URL, testSchemaName } from '../testing/store-kinds.js';
import { PostgresStore } from './postgres-store.js';
import type { DefaultBudget } from '../../config/schema.js';
import { budgetKey } from '../../quota/budgets.js';
import { bucketsAt, type WindowSpec } from '../../quota/window.js';

const schema = testSchemaName();
const clients: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${quoteIdent(schema)}` });
  await client.connect();
  clients.push(client);
  return client;
}

/** A store on `schema`, which it migrates to the latest version, as instance `instanceId`. */
const openOn = (schema: string, instanceId: string, defaultBudgets: DefaultBudget[]) =>
  PostgresStore.open({
    url: TEST_DATABASE_URL,
    schema,
    poolSize: 2,
    statementTimeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    defaultBudgets,
    defaultThresholds: [],
    instanceId,
    instanceTimeoutMs: 30_000,
  });

afterAll(async () => {
  const admin = clients[0] ?? (await connect());
  await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  for (const c of clients) await c.end();
});

describe('PostgreSQL migrations', () => {
  it('instances starting together on an empty database migrate it once, and it records its version', async () => {
    const starting = await Promise.all([connect(), connect(), connect()]);
    await Promise.all(starting.map((c) => migrate(c, schema)));
    const client = starting[0] as pg.Client;
    expect((await client.query('SELECT version FROM schema_version')).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
    const tables = (await client.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema])).rows;
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['ledger', 'holds', 'hold_budgets', 'scope_locks', 'instances', 'alerts', 'alert_deliveries', 'ledger_rollup']));
    // Each alert once per budget, window, kind and threshold.
    const insert = `INSERT INTO alerts (id, budget_key, scope, window_start, kind, threshold, fired_at, payload)
      VALUES ($1, 'user:alice|month', 'user:alice', 0, 'threshold', 80, 0, '{}') ON CONFLICT DO NOTHING`;
    expect((await client.query(insert, ['a1'])).rowCount).toBe(1);
    expect((await client.query(insert, ['a2'])).rowCount).toBe(0);
  });

  it('migration 3 lets the ledger take recovered entries and overrun counts, alerts the overrun kind, and holds a pending charge', async () => {
    const client = await connect();
    const other = `${schema}_v2`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    try {
      await migrate(client, other, 2);
      const entry = (requestId: string, source: string) =>
        client.query(
          `INSERT INTO ledger (request_id, at, user_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
           VALUES ($1, 5, 'alice', 'k', 'm', 10, 1, 0, 0, 7, $2, 'ok', 1)`,
          [requestId, source],
        );
      await entry('old', 'upstream');
      await expect(entry('early', 'recovered')).rejects.toThrow(/ledger_source_check/);
      await client.query(`INSERT INTO holds (id, instance_id, user_id, key_id, tokens, micros, output_tokens, created_at, expires_at) VALUES ('h', 'i', 'alice', 'k', 1, 0, 0, 5, 6)`);

      await migrate(client, other);
      expect((await client.query('SELECT version FROM schema_version')).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
      expect((await client.query('SELECT request_id, overrun_tokens FROM ledger')).rows).toEqual([{ request_id: 'old', overrun_tokens: '0' }]);
      expect((await client.query('SELECT id, pending, delivered_tokens, claimed_at FROM holds')).rows).toEqual([{ id: 'h', pending: null, delivered_tokens: '0', claimed_at: null }]);
      await entry('new', 'recovered');
      await expect(entry('bogus', 'guessed')).rejects.toThrow(/ledger_source_check/);
      await expect(client.query(`UPDATE ledger SET overrun_tokens = -1 WHERE request_id = 'new'`)).rejects.toThrow(/ledger_overrun_tokens_check/);
      const alert = (id: string, kind: string) =>
        client.query(`INSERT INTO alerts VALUES ($1, 'model:m|overrun', 'user:alice', 0, $2, 0, 0, '{}') ON CONFLICT DO NOTHING`, [id, kind]);
      expect((await alert('a1', 'overrun')).rowCount).toBe(1);
      expect((await alert('a2', 'overrun')).rowCount).toBe(0);
      await expect(alert('a3', 'guess')).rejects.toThrow(/alerts_kind_check/);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
      await client.query(`SET search_path = ${quoteIdent(schema)}`);
    }
  });

  it('migration 4 gives keys a refusal style (NULL for existing ones) and users external ids, each one user’s', async () => {
    const client = await connect();
    const other = `${schema}_v3`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    try {
      await migrate(client, other, 3);
      await client.query(`INSERT INTO users (id, name, created_at) VALUES ('alice', 'Alice', 1), ('bob', 'Bob', 1)`);
      await client.query(`INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, created_at) VALUES ('k', 'alice', 'laptop', 'lq-ab', 'h', false, 1)`);

      await migrate(client, other);
      expect((await client.query('SELECT version FROM schema_version')).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
      expect((await client.query('SELECT id, refusal_style FROM api_keys')).rows).toEqual([{ id: 'k', refusal_style: null }]);
      await client.query(`UPDATE api_keys SET refusal_style = 'answer'`);
      await expect(client.query(`UPDATE api_keys SET refusal_style = 'shout'`)).rejects.toThrow(/api_keys_refusal_style_check/);
      const link = (externalId: string, userId: string) =>
        client.query('INSERT INTO user_external_ids (external_id, user_id, linked_at) VALUES ($1, $2, 1)', [externalId, userId]);
      await link('user_2a', 'alice');
      await expect(link('user_2a', 'bob')).rejects.toThrow(/user_external_ids_pkey/);
      await expect(link('user_2b', 'nobody')).rejects.toThrow(/user_external_ids_user_id_fkey/);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
      await client.query(`SET search_path = ${quoteIdent(schema)}`);
    }
  });

  it('migration 5 gives the ledger and its rollup cache-write counts (0 for existing rows), checked, and the report index covers them', async () => {
    const client = await connect();
    const other = `${schema}_v4`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    try {
      await migrate(client, other, 4);
      await client.query(
        `INSERT INTO ledger (request_id, at, user_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
         VALUES ('old', 5, 'alice', 'k', 'm', 10, 1, 0, 0, 7, 'upstream', 'ok', 1)`,
      );
      await client.query(`INSERT INTO ledger_rollup VALUES (0, 'alice', '', 'k', 'm', 1, 10, 1, 0, 0, 7, 1)`);

      await migrate(client, other);
      expect((await client.query('SELECT version FROM schema_version')).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
      expect((await client.query('SELECT request_id, cache_write_tokens, cache_write_1h_tokens FROM ledger')).rows).toEqual([
        { request_id: 'old', cache_write_tokens: '0', cache_write_1h_tokens: '0' },
      ]);
      expect((await client.query('SELECT cache_write_tokens, cache_write_1h_tokens FROM ledger_rollup')).rows).toEqual([{ cache_write_tokens: '0', cache_write_1h_tokens: '0' }]);
      await expect(client.query(`UPDATE ledger SET cache_write_tokens = -1`)).rejects.toThrow(/ledger_cache_write_tokens_check/);
      await expect(client.query(`UPDATE ledger SET cache_write_1h_tokens = -1`)).rejects.toThrow(/ledger_cache_write_1h_tokens_check/);
      const index = (await client.query<{ def: string }>(`SELECT pg_get_indexdef(to_regclass('ledger_report')) AS def`)).rows[0]?.def;
      expect(index).toMatch(/INCLUDE \(.*cache_write_tokens.*\)/);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
      await client.query(`SET search_path = ${quoteIdent(schema)}`);
    }
  });

  it('migration 6 lets the ledger take response-cache hits, with saved counts (0 for existing rows) in it and its rollup, covered by the report index', async () => {
    const client = await connect();
    const other = `${schema}_v5`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    try {
      await migrate(client, other, 5);
      await client.query(
        `INSERT INTO ledger (request_id, at, user_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
         VALUES ('old', 5, 'alice', 'k', 'm', 10, 1, 0, 0, 7, 'upstream', 'ok', 1)`,
      );
      await migrate(client, other);
      expect((await client.query('SELECT version FROM schema_version')).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
      await client.query(
        `INSERT INTO ledger (request_id, at, user_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms, saved_tokens, saved_micros)
         VALUES ('hit', 6, 'alice', 'k', 'm', 0, 0, 0, 0, 0, 'cache', 'ok', 1, 11, 7)`,
      );
      expect((await client.query('SELECT request_id, source, saved_tokens, saved_micros FROM ledger ORDER BY id')).rows).toEqual([
        { request_id: 'old', source: 'upstream', saved_tokens: '0', saved_micros: '0' },
        { request_id: 'hit', source: 'cache', saved_tokens: '11', saved_micros: '7' },
      ]);
      await expect(client.query(`UPDATE ledger SET saved_tokens = -1`)).rejects.toThrow(/ledger_saved_tokens_check/);
      await expect(client.query(`UPDATE ledger SET source = 'guessed'`)).rejects.toThrow(/ledger_source_check/);
      const index = (await client.query<{ def: string }>(`SELECT pg_get_indexdef(to_regclass('ledger_report')) AS def`)).rows[0]?.def;
      expect(index).toMatch(/INCLUDE \(.*source, saved_tokens, saved_micros\)/);
      expect((await client.query('SELECT cache_hits, saved_tokens, saved_micros FROM ledger_rollup')).rows).toEqual([]);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
      await client.query(`SET search_path = ${quoteIdent(schema)}`);
    }
  });

  it('migration 11 counts a rolling window that has usage from before it (counters and ledger) from its first read, and keeps counting it', async () => {
    const client = await connect();
    const other = `${schema}_v11`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    const window: WindowSpec = { kind: 'rolling', hours: 5 };
    const now = Date.parse('2026-12-07T12:00:00Z');
    const buckets = bucketsAt(window, now);
    try {
      await migrate(client, other, 10);
      // As version 10 left it: entries across the window (and one before it), a counter for some buckets only.
      const ats = [(buckets[0] as { start: number }).start - 1, (buckets[0] as { start: number }).start, (buckets[30] as { start: number }).start + 5, now - 1];
      for (const [n, at] of ats.entries()) {
        await client.query(
          `INSERT INTO ledger (request_id, at, user_id, key_id, model, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
           VALUES ($1, $2, 'alice', 'k', 'm', 100, ${n}, 0, 0, 7, 'upstream', 'ok', 1)`,
          [`r${n}`, at],
        );
      }
      const key = 'user:alice|rolling:5h';
      await client.query(`INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros) VALUES ($1, $2, $3, NULL, 102, 7)`, [
        key,
        (buckets[30] as { start: number }).start,
        (buckets[30] as { end: number }).end,
      ]);
      const store = await openOn(other, 'v11', [{ scope: 'user', window, limitTokens: 10_000, limitUsd: null, onLimit: 'reject' }]);
      try {
        const scopes = [{ kind: 'user' as const, id: 'alice' }];
        const inWindow = 100 + 1 + 100 + 2 + 100 + 3;
        expect((await store.budgetStates(scopes, now))[0]?.usage.usedTokens).toBe(inWindow);
        const subject = { userId: 'alice', projectId: null, keyId: 'k' };
        const held = await store.reserve({ holdId: 'after', subject, quote: { tokens: 50, micros: 0 }, now, ttlMs: 60_000 });
        expect(held.ok).toBe(true);
        await store.settle({ holdId: 'after', subject, now, usage: { model: 'm', inputTokens: 50, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} } });
        expect((await store.budgetStates(scopes, now))[0]?.usage.usedTokens).toBe(inWindow + 50);
        // A bucket later, the window no longer holds its first bucket's entry.
        const later = now + ((buckets[1] as { start: number }).start - (buckets[0] as { start: number }).start);
        expect((await store.budgetStates(scopes, later))[0]?.usage.usedTokens).toBe(inWindow + 50 - 101);
      } finally {
        await store.close();
      }
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
    }
  });

  it('migration 16 moves the live holds’ shares onto their rows: the reservations stay, and each goes with its hold', async () => {
    const client = await connect();
    const other = `${schema}_v15`;
    await client.query(`SET search_path = ${quoteIdent(other)}`);
    const now = Date.parse('2026-12-07T12:00:00Z');
    const month: WindowSpec = { kind: 'month', timeZone: 'UTC' };
    const user = budgetKey({ kind: 'user', id: 'alice' }, month);
    const global = budgetKey({ kind: 'global' }, month);
    try {
      await migrate(client, other, 15);
      // As version 15 left them: three holds of an instance that stopped for the upgrade, one of
      // which has less on alice's budget (created while its stream ran); the triggers sum them.
      for (const [id, tokens] of [['settled', 100], ['released', 40], ['expired', 25]] as const) {
        await client.query(
          `INSERT INTO holds (id, instance_id, user_id, key_id, tokens, micros, output_tokens, created_at, expires_at) VALUES ($1, 'v15', 'alice', 'k', $2, 0, 0, $3, $4)`,
          [id, tokens, now, now + 60_000],
        );
      }
      await client.query(
        `INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros) VALUES
           ('settled', $1, 100, 0), ('settled', $2, 100, 0), ('released', $1, 40, 0), ('released', $2, 40, 0), ('expired', $1, 5, 0), ('expired', $2, 25, 0)`,
        [user, global],
      );
      const store = await openOn(other, 'v16', [
        { scope: 'user', window: month, limitTokens: 10_000, limitUsd: null, onLimit: 'reject' },
        { scope: 'global', window: month, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject' },
      ]);
      try {
        const reserved = async () => (await store.budgetStates([{ kind: 'user', id: 'alice' }, { kind: 'global' }], now)).map((s) => s.usage.reservedTokens);
        expect((await client.query('SELECT count(*)::int AS n FROM hold_budgets')).rows).toEqual([{ n: 0 }]);
        expect(await reserved()).toEqual([145, 165]);
        const subject = { userId: 'alice', projectId: null, keyId: 'k' };
        await store.settle({ holdId: 'settled', subject, now, usage: { model: 'm', inputTokens: 60, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} } });
        expect(await reserved()).toEqual([45, 65]);
        expect(await store.release('released')).toBe(true);
        expect(await reserved()).toEqual([5, 25]);
        // Its instance is gone and it carries no pending charge: the sweep takes it.
        expect(await store.expireHolds(now)).toBe(1);
        expect(await reserved()).toEqual([0, 0]);
        expect(await store.listHolds()).toEqual([]);
      } finally {
        await store.close();
      }
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(other)} CASCADE`);
    }
  });

  it('refuses a database migrated by a newer lobe-quota', async () => {
    const client = await connect();
    await client.query('UPDATE schema_version SET version = $1', [PG_SCHEMA_VERSION + 1]);
    await expect(migrate(client, schema)).rejects.toThrow(/newer than this lobe-quota/);
    await client.query('UPDATE schema_version SET version = $1', [PG_SCHEMA_VERSION]);
  });
});
