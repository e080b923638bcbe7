import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate, SCHEMA_VERSION } from './migrations.js';

describe('migration 4', () => {
  it('rebuilds alerts to allow anomalies, keeping rows, deliveries, the once-per-window key and foreign keys', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, 3);
    db.prepare(`INSERT INTO alerts VALUES ('a1', 'user:alice|month', 'user:alice', 100, 'threshold', 80, 5, '{}')`).run();
    db.prepare(`INSERT INTO alert_deliveries (alert_id, channel, state, next_attempt_at) VALUES ('a1', 'ops', 'pending', 5)`).run();
    expect(() => db.prepare(`INSERT INTO alerts VALUES ('a2', 'user:alice|anomaly', 'user:alice', 0, 'anomaly', 0, 5, '{}')`).run()).toThrow(/CHECK/);

    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.prepare('SELECT id, kind, threshold FROM alerts').all()).toEqual([{ id: 'a1', kind: 'threshold', threshold: 80 }]);
    expect(db.prepare('SELECT alert_id, channel FROM alert_deliveries').all()).toEqual([{ alert_id: 'a1', channel: 'ops' }]);

    const anomaly = db.prepare(`INSERT INTO alerts VALUES (?, 'user:alice|anomaly', 'user:alice', 3600000, 'anomaly', 0, 5, '{}') ON CONFLICT DO NOTHING`);
    expect(anomaly.run('a2').changes).toBe(1);
    expect(anomaly.run('a3').changes).toBe(0); // once per subject and hour
    expect(() => db.prepare(`INSERT INTO alert_deliveries (alert_id, channel, state, next_attempt_at) VALUES ('nope', 'ops', 'pending', 5)`).run()).toThrow(/FOREIGN KEY/);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts' AND name = 'alerts_fired'").get()).toBeDefined();
    db.close();
  });
});

describe('migration 5', () => {
  it('lets the ledger take recovered entries and overrun counts, and alerts the overrun kind, keeping rows, indexes and every other CHECK', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, 4);
    const entry = (requestId: string, source: string, tokens = 10) =>
      db
        .prepare(
          `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
             reasoning_tokens, cost_micros, source, outcome, latency_ms) VALUES (?, 5, 'alice', NULL, 'k', 'm', ?, 1, 0, 0, 7, ?, 'ok', 1)`,
        )
        .run(requestId, tokens, source);
    entry('old', 'upstream');
    expect(() => entry('early', 'recovered')).toThrow(/CHECK/);
    db.prepare(`INSERT INTO alerts VALUES ('a1', 'user:alice|month', 'user:alice', 100, 'threshold', 80, 5, '{}')`).run();
    db.prepare(`INSERT INTO alert_deliveries (alert_id, channel, state, next_attempt_at) VALUES ('a1', 'ops', 'pending', 5)`).run();
    const indexes = () => db.prepare<[], { name: string }>(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('ledger', 'alerts') ORDER BY name`).all();
    const before = indexes();

    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    expect(indexes()).toEqual(before);
    expect(db.prepare('SELECT request_id, source, overrun_tokens FROM ledger').all()).toEqual([{ request_id: 'old', source: 'upstream', overrun_tokens: 0 }]);
    entry('new', 'recovered');
    expect(() => entry('bogus', 'guessed')).toThrow(/CHECK/);
    expect(() => entry('negative', 'upstream', -1)).toThrow(/CHECK/);
    expect(() => db.prepare(`UPDATE ledger SET overrun_tokens = -1 WHERE request_id = 'new'`).run()).toThrow(/CHECK/);
    // The once-per-window key and the outbox's foreign key are still there.
    const overrun = db.prepare(`INSERT INTO alerts VALUES (?, 'model:gpt-4o|overrun', 'user:alice', 3600000, 'overrun', 0, 5, '{}') ON CONFLICT DO NOTHING`);
    expect(overrun.run('a2').changes).toBe(1);
    expect(overrun.run('a3').changes).toBe(0);
    expect(() => db.prepare(`INSERT INTO alerts VALUES ('a4', 'x', 'global', 0, 'guess', 0, 5, '{}')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO alert_deliveries (alert_id, channel, state, next_attempt_at) VALUES ('nope', 'ops', 'pending', 5)`).run()).toThrow(/FOREIGN KEY/);
    expect(db.prepare('SELECT COUNT(*) AS n FROM holds').get()).toEqual({ n: 0 });
    // Defensive mode is back on: nothing else may write the schema.
    expect(() => db.pragma('writable_schema = ON')).not.toThrow();
    expect(() => db.prepare(`UPDATE sqlite_schema SET sql = sql WHERE name = 'ledger'`).run()).toThrow(/may not be modified/);
    db.close();
  });
});

describe('migration 6', () => {
  it('gives keys a refusal style (NULL for existing ones) and users external ids, each one user’s', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, 5);
    db.prepare(`INSERT INTO users (id, name, created_at) VALUES ('alice', 'Alice', 1), ('bob', 'Bob', 1)`).run();
    db.prepare(`INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, service, created_at) VALUES ('k', 'alice', 'laptop', 'lq-ab', 'h', 0, 1)`).run();

    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT id, refusal_style FROM api_keys').all()).toEqual([{ id: 'k', refusal_style: null }]);
    db.prepare(`UPDATE api_keys SET refusal_style = 'answer'`).run();
    expect(() => db.prepare(`UPDATE api_keys SET refusal_style = 'shout'`).run()).toThrow(/CHECK/);

    const link = db.prepare('INSERT INTO user_external_ids (external_id, user_id, linked_at) VALUES (?, ?, 1)');
    link.run('user_2a', 'alice');
    expect(() => link.run('user_2a', 'bob')).toThrow(/UNIQUE|PRIMARY KEY/);
    expect(() => link.run('user_2b', 'nobody')).toThrow(/FOREIGN KEY/);
    db.close();
  });
});

describe('migration 7', () => {
  it('gives the ledger and its rollup cache-write counts (0 for existing rows) and rebuilds the report index to cover them', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, 6);
    db.prepare(
      `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
         reasoning_tokens, cost_micros, source, outcome, latency_ms) VALUES ('old', 5, 'alice', NULL, 'k', 'm', 10, 1, 0, 0, 7, 'upstream', 'ok', 1)`,
    ).run();
    db.prepare(`INSERT INTO ledger_rollup VALUES (0, 'alice', '', 'k', 'm', 1, 10, 1, 0, 0, 7, 1)`).run();

    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    expect(db.prepare('SELECT request_id, cache_write_tokens, cache_write_1h_tokens FROM ledger').all()).toEqual([
      { request_id: 'old', cache_write_tokens: 0, cache_write_1h_tokens: 0 },
    ]);
    expect(db.prepare('SELECT cache_write_tokens, cache_write_1h_tokens FROM ledger_rollup').all()).toEqual([{ cache_write_tokens: 0, cache_write_1h_tokens: 0 }]);
    expect(() => db.prepare(`UPDATE ledger SET cache_write_tokens = -1`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`UPDATE ledger SET cache_write_1h_tokens = -1`).run()).toThrow(/CHECK/);
    const columns = db.prepare<[], { name: string }>(`SELECT name FROM pragma_index_info('ledger_report') ORDER BY seqno`).all().map((c) => c.name);
    expect(columns).toContain('cache_write_tokens');
    db.close();
  });
});

describe('migration 8', () => {
  it('lets the ledger take response-cache hits, gives it and its rollup saved counts (0 for existing rows), and the report index covers them', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, 7);
    const insert = (id: string, source: string) =>
      db
        .prepare(
          `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
             reasoning_tokens, cost_micros, source, outcome, latency_ms) VALUES (?, 5, 'alice', NULL, 'k', 'm', 10, 1, 0, 0, 7, ?, 'ok', 1)`,
        )
        .run(id, source);
    insert('old', 'upstream');
    expect(() => insert('early-hit', 'cache')).toThrow(/CHECK/);

    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    insert('hit', 'cache');
    expect(db.prepare('SELECT request_id, source, saved_tokens, saved_micros FROM ledger ORDER BY id').all()).toEqual([
      { request_id: 'old', source: 'upstream', saved_tokens: 0, saved_micros: 0 },
      { request_id: 'hit', source: 'cache', saved_tokens: 0, saved_micros: 0 },
    ]);
    expect(() => db.prepare(`UPDATE ledger SET saved_tokens = -1`).run()).toThrow(/CHECK/);
    expect(() => insert('other', 'guessed')).toThrow(/CHECK/);
    const columns = db.prepare<[], { name: string }>(`SELECT name FROM pragma_index_info('ledger_report') ORDER BY seqno`).all().map((c) => c.name);
    expect(columns).toEqual(expect.arrayContaining(['source', 'saved_tokens', 'saved_micros']));
    expect(db.prepare(`SELECT cache_hits, saved_tokens, saved_micros FROM ledger_rollup`).all()).toEqual([]);
    db.close();
  });
});
