import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { quoteIdent } from './pg-pool.js';
import { migrate, PG_SCHEMA_VERSION } from './migrations.js';
import { TEST_DATABASE_URL, testSchemaName } from '../testing/store-kinds.js';

const schema = testSchemaName();
const clients: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${quoteIdent(schema)}` });
  await client.connect();
  clients.push(client);
  return client;
}

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

  it('refuses a database migrated by a newer lobe-quota', async () => {
    const client = await connect();
    await client.query('UPDATE schema_version SET version = $1', [PG_SCHEMA_VERSION + 1]);
    await expect(migrate(client, schema)).rejects.toThrow(/newer than this lobe-quota/);
    await client.query('UPDATE schema_version SET version = $1', [PG_SCHEMA_VERSION]);
  });
});
