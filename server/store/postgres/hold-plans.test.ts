import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../../config/schema.js';
import type { RequestSubject } from '../../quota/scope.js';
import { T0, userWithKey } from '../../testing/harness.js';
import { usage } from '../testing/store-fixtures.js';
import { postgresTestSchema, TEST_DATABASE_URL } from '../testing/store-kinds.js';
import type { PostgresStore } from './postgres-store.js';
import { quoteIdent } from './pg-pool.js';

// A request's own calls must cost the same whether it is alone or one of thousands in flight: each
// statement that settles, releases or grows a hold must find its rows by key, never by reading the
// other requests' holds or the other budgets' reservations. PostgreSQL picks its plans from the
// tables' statistics, and a queue table's are often taken while it is nearly empty (autovacuum at a
// quiet moment; bench:postgres's ANALYZE after loading): these plans must hold up under them too.

const db = postgresTestSchema();

/** Per user, a month of tokens; for everyone, a month of dollars: every hold has two budgets, one shared. */
const BUDGETS: DefaultBudget[] = [
  { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1e12, limitUsd: null, onLimit: 'reject' },
  { scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 1e9, onLimit: 'reject' },
];

/** Others' requests in flight while the observed ones run: each its own hold and user budget. */
const OTHERS = 150;
/** What each request asks for. */
const QUOTE = { tokens: 100, micros: 10 };
/** The most rows a plan node of the observed calls may read (or read and discard). */
const OWN_ROWS = 12;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

interface Observed {
  query: string;
  node: PlanNode;
  /** Rows the node produced over all its loops, plus those it read and threw away. */
  rows: number;
}

/**
 * Every plan the store's connections run from now on, the statements inside its functions and
 * triggers too, with their actual row counts: auto_explain, loaded into each pooled connection the
 * first time the store takes it (pg runs a client's queries in order, so before the store's own).
 */
function observePlans(store: PostgresStore): Observed[] {
  const observed: Observed[] = [];
  const seen = new WeakSet<pg.PoolClient>();
  const pool = (store as unknown as { pool: pg.Pool }).pool;
  pool.on('acquire', (client) => {
    if (seen.has(client)) return;
    seen.add(client);
    client.on('notice', ({ message }) => {
      const json = message?.slice(message.indexOf('{'));
      if (!message?.startsWith('duration') || !json) return;
      const { 'Query Text': query, Plan: plan } = JSON.parse(json) as { 'Query Text': string; Plan: PlanNode };
      const walk = (node: PlanNode) => {
        const rows =
          (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) +
          (node['Rows Removed by Filter'] ?? 0) +
          (node['Rows Removed by Join Filter'] ?? 0) +
          (node['Rows Removed by Index Recheck'] ?? 0);
        observed.push({ query, node, rows });
        for (const child of node.Plans ?? []) walk(child);
      };
      walk(plan);
    });
    void client.query(
      `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
       SET auto_explain.log_analyze = on; SET auto_explain.log_timing = off; SET auto_explain.log_format = json;
       SET auto_explain.log_level = notice; SET client_min_messages = notice`,
    );
  });
  return observed;
}

/** The plan nodes that read (or read and discard) more than a request's own rows, described. */
const wide = (observed: Observed[]) =>
  observed
    .filter(({ rows }) => rows > OWN_ROWS)
    .map(({ query, node, rows }) => `${rows} rows: ${node['Node Type']} ${node['Relation Name'] ?? ''} ${node['Index Name'] ?? ''} in ${query.replace(/\s+/g, ' ').slice(0, 90)}`);

/**
 * A store with alice's budgets resolved (her calls below are the steady state), the holds and
 * reservation tables analysed while empty, and then OTHERS requests of other users in flight.
 */
async function manyInFlight(): Promise<{ store: PostgresStore; subject: RequestSubject }> {
  await db.reset();
  const store = await db.open({ defaultBudgets: BUDGETS });
  const { subject } = await userWithKey(store, 'alice');
  const others = [];
  for (let i = 0; i < OTHERS; i++) others.push((await userWithKey(store, `other${i}`)).subject);
  expect((await store.reserve({ holdId: 'warm', subject, quote: QUOTE, now: T0, ttlMs: 600_000 })).ok).toBe(true);
  await store.settle({ holdId: 'warm', subject, usage: usage(60, 40, 10), now: T0 });
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`ANALYZE ${['holds', 'hold_budgets', 'budget_reservations'].map((t) => `${quoteIdent(db.schema)}.${t}`).join(', ')}`);
  } finally {
    await admin.end();
  }
  for (const [i, other] of others.entries()) expect((await store.reserve({ holdId: `other-${i}`, subject: other, quote: QUOTE, now: T0, ttlMs: 600_000 })).ok).toBe(true);
  return { store, subject };
}

describe('a request among many in flight', () => {
  it('settles, releases, renews and grows its hold by its own rows, with statistics taken while the tables were empty', async () => {
    const { store, subject } = await manyInFlight();
    const observed = observePlans(store);
    expect((await store.reserve({ holdId: 'settled', subject, quote: QUOTE, now: T0, ttlMs: 600_000 })).ok).toBe(true);
    await store.settle({ holdId: 'settled', subject, usage: usage(60, 40, 10), now: T0 });
    expect((await store.reserve({ holdId: 'released', subject, quote: QUOTE, now: T0, ttlMs: 600_000 })).ok).toBe(true);
    expect(await store.release('released')).toBe(true);
    expect((await store.reserve({ holdId: 'grown', subject, quote: QUOTE, now: T0, ttlMs: 600_000 })).ok).toBe(true);
    expect(await store.renew('grown', T0, 600_000)).toBe(true);
    expect((await store.extend('grown', { tokens: 50, micros: 5 }, T0, 600_000)).ok).toBe(true);
    await store.settle({ holdId: 'grown', subject, usage: usage(100, 50, 15), now: T0 });

    // The observation saw the statements that matter (a check on the check).
    const queries = observed.map((o) => o.query).join('\n');
    for (const statement of ['lq_meter_many', 'lq_settle_many', 'DELETE FROM holds', 'UPDATE holds SET expires_at = GREATEST', 'UPDATE budget_reservations', '(budget_keys, budget_tokens, budget_micros) = (']) {
      expect(queries).toContain(statement);
    }
    expect(wide(observed)).toEqual([]);
    // And the others' holds are all still set aside, alice's three settles counted.
    const [global] = await store.budgetStates([{ kind: 'global' }], T0);
    expect([global?.usage.reservedTokens, global?.usage.usedTokens]).toEqual([OTHERS * QUOTE.tokens, 100 + 100 + 150]);
  });

  it('gives an expired hold’s reservations back by key, though the sweep reads every hold to find it', async () => {
    const { store, subject } = await manyInFlight();
    expect((await store.reserve({ holdId: 'forgotten', subject, quote: QUOTE, now: T0, ttlMs: 1_000 })).ok).toBe(true);
    const observed = observePlans(store);
    expect(await store.expireHolds(T0 + 2_000)).toBe(1);
    const reservations = observed.filter((o) => o.query.includes('budget_reservations'));
    expect(reservations.map((o) => o.query).join('\n')).toContain('UPDATE budget_reservations');
    expect(wide(reservations)).toEqual([]);
    const [global] = await store.budgetStates([{ kind: 'global' }], T0);
    expect(global?.usage.reservedTokens).toBe(OTHERS * QUOTE.tokens);
  });
});
