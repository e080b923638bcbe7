import { describe, expect, it } from 'vitest';
import { userWithKey } from '../../testing/harness.js';
import type { RequestSubject, Scope } from '../../quota/scope.js';
import { postgresTestSchema } from '../testing/store-kinds.js';
import { monthlyTokens, TTL, usage } from '../testing/store-fixtures.js';
import type { PostgresStore } from './postgres-store.js';

/**
 * Two instances (two PostgresStores, each with its own pool and id, as two processes) on one schema,
 * 64 requests from each all in flight at once, fighting over one project budget.
 *
 * "1 token of headroom per request": DESIGN admits a request only when its prompt plus one output
 * token fits. Every request here asks for exactly that (a prompt of PROMPT tokens and max_tokens 1),
 * so each admitted request takes its one token of output headroom and nothing more, and the limit
 * is sized so that exactly `fits` of them fit, leaving `spare` tokens: either exactly PROMPT (the
 * next request's prompt fits, its one output token does not: it is refused by a single token) or
 * none (the last one admitted fills the budget to the token). Each admitted request settles at
 * exactly its hold, so no interleaving of reserves and settles changes how many fit.
 */

const PROMPT = 40;
const NEED = PROMPT + 1;
const PER_INSTANCE = 64;
const USERS = 8;
const PROJECT = 'arena';

const db = postgresTestSchema();

/** A month apart, so each round starts on fresh windows of the same budgets. */
const ROUNDS = [
  { at: Date.parse('2026-11-22T12:00:00Z'), fits: 64, spare: PROMPT },
  { at: Date.parse('2026-12-22T12:00:00Z'), fits: 100, spare: 0 },
  { at: Date.parse('2027-01-22T12:00:00Z'), fits: 29, spare: PROMPT },
];

interface Outcome {
  id: string;
  instance: 'a' | 'b';
  admitted: boolean;
  blocking?: Scope;
}

describe('two PostgreSQL instances fighting over one budget', () => {
  it.each(ROUNDS)(
    '128 requests at once ($fits fit, $spare spare): exactly those admitted, never over, none lost, no holds left',
    async ({ at, fits, spare }) => {
      await db.reset();
      const limit = fits * NEED + spare;
      // The project budget binds; the global and user budgets count every request too (and their
      // locks are taken by every admission), but have room for all of them.
      const defaultBudgets = [monthlyTokens('project', limit), monthlyTokens('global', 1_000_000), monthlyTokens('user', 100_000)];
      const a = await db.open({ defaultBudgets, instanceId: 'a' });
      const b = await db.open({ defaultBudgets, instanceId: 'b' });
      const subjects: RequestSubject[] = [];
      for (let u = 0; u < USERS; u++) subjects.push((await userWithKey(a, `user${u}`, PROJECT, at)).subject);

      const scopes: Scope[] = [{ kind: 'project', id: PROJECT }, { kind: 'global' }];
      let fighting = true;
      let samples = 0;
      // A third reader all along: the budget is never seen over its limit, holds included.
      const watch = (async () => {
        while (fighting) {
          const [project] = await a.budgetStates(scopes, at);
          expect(project!.usage.usedTokens + project!.usage.reservedTokens).toBeLessThanOrEqual(limit);
          samples++;
        }
      })();

      const request = async (i: number): Promise<Outcome> => {
        const instance = i % 2 === 0 ? 'a' : 'b';
        const store: PostgresStore = instance === 'a' ? a : b;
        const subject = subjects[i % USERS]!;
        const id = `round-${at}-r${i}`;
        const quote = { tokens: PROMPT, micros: 0, output: { wantTokens: 1, minTokens: 1, microsPerMillion: 0 } };
        const held = await store.reserve({ holdId: id, subject, quote, now: at, ttlMs: TTL });
        if (!held.ok) return { id, instance, admitted: false, blocking: held.blocking.budget.scope };
        expect(held.hold.tokens).toBe(NEED);
        const settled = await store.settle({ holdId: id, subject, usage: usage(PROMPT, 1), now: at });
        expect(settled.duplicate).toBe(false);
        return { id, instance, admitted: true };
      };
      const started = Date.now();
      let outcomes: Outcome[];
      try {
        outcomes = await Promise.all(Array.from({ length: 2 * PER_INSTANCE }, (_, i) => request(i)));
      } finally {
        fighting = false;
        await watch;
      }
      const admitted = outcomes.filter((o) => o.admitted);
      console.info(
        `round ${new Date(at).toISOString().slice(0, 7)}: ${admitted.length} admitted (a ${admitted.filter((o) => o.instance === 'a').length}, b ${admitted.filter((o) => o.instance === 'b').length}) in ${Date.now() - started} ms, ${samples} samples`,
      );
      expect(admitted).toHaveLength(fits);
      // Every refusal names the budget that was full, never another.
      expect(outcomes.filter((o) => !o.admitted).every((o) => o.blocking?.kind === 'project' && o.blocking.id === PROJECT)).toBe(true);

      // None lost: every admitted request's settle is in the ledger once, and in the counters.
      const entries = (await b.recentEntries(1_000)).filter((e) => e.at === at);
      expect(entries.map((e) => e.requestId).sort()).toEqual(admitted.map((o) => o.id).sort());
      expect(entries.every((e) => e.inputTokens === PROMPT && e.outputTokens === 1)).toBe(true);
      const states = await b.budgetStates([...scopes, ...subjects.map((s): Scope => ({ kind: 'user', id: s.userId }))], at);
      const used = fits * NEED;
      expect(states.map((s) => [s.budget.scope.kind, s.usage.usedTokens, s.usage.reservedTokens])).toEqual(
        expect.arrayContaining([
          ['project', used, 0],
          ['global', used, 0],
        ]),
      );
      const byUser = states.filter((s) => s.budget.scope.kind === 'user').reduce((sum, s) => sum + s.usage.usedTokens, 0);
      expect(byUser).toBe(used);
      expect(limit - used).toBe(spare);
      expect(await a.listHolds()).toEqual([]);
      const audit = await a.counterAudit();
      expect(audit.length).toBeGreaterThan(0);
      for (const row of audit) expect(row.stored, row.budgetKey).toEqual(row.ledger);
    },
    30_000,
  );
});
