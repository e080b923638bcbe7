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
