import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admissionOnLimit, coversModel, routingRules, type Budget, type FallbackRule } from '../quota/budgets.js';
import { T0, userWithKey } from '../testing/harness.js';
import { storeKinds } from '../store/testing/store-kinds.js';
import type { BudgetState, Store } from '../store/types.js';
import { fullness, routeRequest, ruleAt, type Tried } from './routing.js';

/**
 * The routing step over a real store, for any budgets and rules and any sequence of requests:
 *  - no budget passes its limit (a budget that routes: its hard ceiling, for a request it routed);
 *  - a request that every budget of its model admits, and whose model no budget's rule moves at the
 *    budgets' levels, is served by the model it asked for;
 *  - a request served by another model got there by rules: each step is a rule, at or below its
 *    budget's level (or at the limit, when the model before did not fit), of a budget covering the
 *    model before it;
 *  - a refused request could not be served by the model it asked for.
 */

const MODELS = ['m1', 'm2', 'm3', 'free'] as const;
const CEILING = 1.2;

interface BudgetSpec {
  limit: number;
  models: string[] | null;
  rules: FallbackRule[];
  onLimit: 'reject' | 'alert-only';
}

const rulesArb: fc.Arbitrary<FallbackRule[]> = fc
  .uniqueArray(fc.constantFrom(50, 80, 90, 100), { maxLength: 3 })
  .chain((ats) => fc.tuple(...[...ats].sort((a, b) => a - b).map((at) => fc.record({ at: fc.constant(at), to: fc.constantFrom(...MODELS) }))))
  .map((rules) => rules as FallbackRule[]);

const budgetArb: fc.Arbitrary<BudgetSpec> = fc.record({
  limit: fc.integer({ min: 20, max: 400 }),
  models: fc.constantFrom<string[] | null>(null, ['m1'], ['m2', 'm3'], ['m*'], ['free']),
  rules: rulesArb,
  onLimit: fc.constantFrom<'reject' | 'alert-only'>('reject', 'reject', 'reject', 'alert-only'),
});

const requestArb = fc.record({ model: fc.constantFrom(...MODELS), tokens: fc.integer({ min: 1, max: 80 }) });

/** Whether `budget` lets `tokens` more in (a request with no output allowance: nothing to shrink). */
function fits({ budget, usage }: BudgetState, tokens: number, routed: boolean): boolean {
  const mode = admissionOnLimit(budget);
  if (mode === 'alert-only' || budget.limitTokens === null) return true;
  const scale = mode === 'downgrade' && routed ? CEILING : 1;
  return usage.usedTokens + usage.reservedTokens + tokens <= Math.floor(budget.limitTokens * scale);
}

/** Runs per store: each PostgreSQL step is a round trip, so fewer runs there keep the test in its time. */
const RUNS = { sqlite: 60, postgres: 20 };

describe.each(storeKinds())('$name store: routing', ({ name, open }) => {
  it('serves each request by the first model its rules allow, and no budget passes its limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(budgetArb, { minLength: 1, maxLength: 3 }), fc.array(requestArb, { minLength: 1, maxLength: 25 }), async (specs, requests) => {
        const store: Store = await open();
        try {
          const { subject } = await userWithKey(store, 'alice');
          const windows = [{ kind: 'day', timeZone: 'UTC' }, { kind: 'week', timeZone: 'UTC' }, { kind: 'month', timeZone: 'UTC' }] as const;
          for (const [i, spec] of specs.entries()) {
            await store.putBudget(
              {
                scope: { kind: 'user', id: 'alice' },
                window: windows[i] as (typeof windows)[number],
                limitTokens: spec.limit,
                limitMicros: null,
                thresholds: null,
                onLimit: spec.onLimit,
                downgradeTo: null,
                models: spec.models,
                fallback: spec.onLimit === 'alert-only' ? [] : spec.rules,
              },
              T0,
            );
          }
          const scopes = [{ kind: 'user', id: 'alice' } as const];
          for (const [n, { model: asked, tokens }] of requests.entries()) {
            const before = await store.budgetStates(scopes, T0);
            const of = (model: string) => before.filter((s) => coversModel(s.budget, model));
            const plan = await routeRequest<null>(asked, {
              upstreamsOf: () => ['u'],
              routable: true,
              tryOn: async (model, upstream, routed): Promise<Tried<null>> => {
                const holdId = `r${n}-${model}`;
                const quote = { tokens, micros: 0, ...(routed ? { downgradeCeiling: CEILING } : {}) };
                const result = await store.reserve({ holdId, subject, quote, now: T0, ttlMs: 60_000, route: { model, upstream } });
                if (!result.ok) return { ok: false, value: null, blocking: 'blocking' in result ? result.blocking : null };
                const states = result.budgets.map((s) => ({ ...s, usage: { ...s.usage, reservedTokens: s.usage.reservedTokens - result.hold.tokens } }));
                return { ok: true, value: null, budgets: states, release: () => store.release(holdId) };
              },
            });
            if (plan.tried.ok) {
              const holdId = `r${n}-${plan.model}`;
              const usage = { model: plan.model, upstream: 'u', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0 };
              await store.settle({ holdId, subject, usage: { ...usage, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} }, now: T0 });
            }
            expect(await store.listHolds()).toEqual([]);

            // Served by the model asked for whenever it fits and no rule moves it.
            const stays = of(asked).every((s) => fits(s, tokens, false)) && of(asked).every((s) => ruleAt(routingRules(s.budget), fullness(s)) === null);
            if (stays) expect(plan.tried.ok && plan.model).toBe(asked);
            // Refused only if the asked model did not fit, or a rule moved it.
            if (!plan.tried.ok) expect(stays).toBe(false);
            // Elsewhere only by a rule of a budget covering the asked model.
            if (plan.tried.ok && plan.model !== asked) {
              expect(plan.routedFrom).toBe(asked);
              const targets = before.flatMap((s) => routingRules(s.budget).map((r) => r.to));
              expect(targets).toContain(plan.model);
            }
          }
          // No budget past its limit; one that routes, past its ceiling.
          for (const { budget, usage } of await store.budgetStates(scopes, T0)) {
            if (budget.limitTokens === null || budget.onLimit === 'alert-only') continue;
            const ceiling = routingRules(budget as Budget).length > 0 ? Math.floor(budget.limitTokens * CEILING) : budget.limitTokens;
            expect(usage.usedTokens).toBeLessThanOrEqual(ceiling);
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: RUNS[name] },
    );
  }, 120_000);
});
