import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { usdToMicros } from '../quota/status.js';
import type { WindowSpec } from '../quota/window.js';
import { T0, userWithKey } from '../testing/harness.js';
import type { Hold, Usage } from './types.js';
import { storeKinds, type AuditedStore } from './testing/store-kinds.js';

/**
 * The engine's contract, for any interleaving of reserve / extend / settle / release / expire over
 * several scopes and windows (with the clock moving, so windows roll):
 *  - used + reserved never exceeds any limit (requests settle within what they hold);
 *  - settling twice changes nothing;
 *  - every counter equals the sum of the ledger entries it stands for;
 *  - a budget's reserved amount is exactly what the live holds set aside.
 */

const TTL = 10 * 60_000;

type Op =
  | { op: 'reserve'; key: number; tokens: number; micros: number; want: number; min: number; price: number; pending: boolean }
  | { op: 'extend'; hold: number; tokens: number; micros: number; delivered: number }
  | { op: 'settle'; hold: number; share: number }
  | { op: 'settleAgain'; entry: number }
  | { op: 'release'; hold: number }
  | { op: 'advance'; ms: number }
  | { op: 'crash'; hold: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('reserve' as const),
      key: fc.nat(3),
      tokens: fc.nat(120),
      micros: fc.nat(3_000),
      want: fc.nat(200),
      min: fc.nat(2),
      price: fc.constantFrom(0, 2_000_000, 15_000_000),
      // As the proxy's are: kept with the hold (and, on SQLite, copied to the file) for recovery.
      pending: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('extend' as const), hold: fc.nat(50), tokens: fc.nat(80), micros: fc.nat(2_000), delivered: fc.nat(300) }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('settle' as const), hold: fc.nat(50), share: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('settleAgain' as const), entry: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), hold: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3 * 3_600_000 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('crash' as const), hold: fc.nat(50) }) },
);

const windowArb: fc.Arbitrary<WindowSpec> = fc.constantFrom<WindowSpec>(
  { kind: 'day', timeZone: 'America/New_York' },
  { kind: 'day', timeZone: 'Asia/Shanghai' },
  { kind: 'rolling', hours: 2 },
  { kind: 'total' },
);

const budgetArb = (scope: DefaultBudget['scope']) =>
  fc.record({
    window: windowArb,
    limitTokens: fc.option(fc.integer({ min: 50, max: 1_500 }), { nil: null }),
    limitUsd: fc.option(fc.integer({ min: 1, max: 40 }).map((cents) => cents / 1000), { nil: null }),
  }).map(
    (b): DefaultBudget => ({
      scope,
      window: b.window,
      limitTokens: b.limitTokens ?? (b.limitUsd === null ? 500 : null),
      limitUsd: b.limitUsd,
      onLimit: 'reject',
    }),
  );

/** One default budget per scope kind, each on its own window: every request meets four budgets. */
const defaultsArb = fc.tuple(budgetArb('global'), budgetArb('project'), budgetArb('user'), budgetArb('key'));

async function checkInvariants(store: AuditedStore, subjects: Awaited<ReturnType<typeof userWithKey>>['subject'][], live: Map<string, Hold>, now: number) {
  const seen = new Set<string>();
  for (const subject of subjects) {
    const scopes = [
      { kind: 'key' as const, id: subject.keyId },
      { kind: 'user' as const, id: subject.userId },
      ...(subject.projectId === null ? [] : [{ kind: 'project' as const, id: subject.projectId }]),
      { kind: 'global' as const },
    ];
    for (const state of await store.budgetStates(scopes, now)) {
      if (seen.has(state.budget.key)) continue;
      seen.add(state.budget.key);
      const { usage, budget } = state;
      if (budget.limitTokens !== null) expect(usage.usedTokens + usage.reservedTokens).toBeLessThanOrEqual(budget.limitTokens);
      if (budget.limitMicros !== null) expect(usage.usedMicros + usage.reservedMicros).toBeLessThanOrEqual(budget.limitMicros);
      // Reserved is exactly what the live holds that this budget applies to set aside.
      const expected = [...live.values()]
        .filter((h) => appliesTo(budget.key, h))
        .reduce((sum, h) => ({ tokens: sum.tokens + h.tokens, micros: sum.micros + h.micros }), { tokens: 0, micros: 0 });
      expect({ tokens: usage.reservedTokens, micros: usage.reservedMicros }).toEqual(expected);
    }
  }
  for (const row of await store.counterAudit()) {
    expect(row.stored ?? row.ledger, `${row.budgetKey}@${row.bucketStart} stored`).toEqual(row.ledger);
    expect(row.cached ?? row.ledger, `${row.budgetKey}@${row.bucketStart} in memory`).toEqual(row.ledger);
  }
}

function appliesTo(budgetKey: string, hold: Hold): boolean {
  const scope = budgetKey.slice(0, budgetKey.indexOf('|'));
  const s = hold.subject;
  return scope === 'global' || scope === `user:${s.userId}` || scope === `key:${s.keyId}` || (s.projectId !== null && scope === `project:${s.projectId}`);
}

const kinds = storeKinds();

/**
 * PostgreSQL takes a few round trips per step where SQLite reads memory: fewer runs there, so the
 * suite stays within minutes (every run is still up to 60 steps with all invariants checked).
 */
const RUNS = { sqlite: 150, postgres: 60 };

describe.each(kinds)('$name store: budget engine (property)', ({ name, open }) => {
  it('never lets used + reserved pass a limit, settles once, and keeps counters equal to the ledger', async () => {
    await fc.assert(
      fc.asyncProperty(defaultsArb, fc.array(opArb, { minLength: 1, maxLength: 60 }), async (defaults, ops) => {
        const store = await open({ defaultBudgets: defaults });
        try {
          const subjects = [
            (await userWithKey(store, 'u1', 'p1')).subject,
            (await userWithKey(store, 'u2', 'p1')).subject,
            (await userWithKey(store, 'u3', null)).subject,
          ];
          // A second key of u1, so two keys share one user budget.
          subjects.push({ ...(subjects[0] as (typeof subjects)[0]), keyId: 'key_second' });
          await store.createKey({ id: 'key_second', userId: 'u1', name: 'second', service: false, secretHash: 'h2', prefix: 'lq-x' }, T0);

          let now = T0;
          let seq = 0;
          const live = new Map<string, Hold>();
          const settled: string[] = [];

          const pick = <T>(items: readonly T[], index: number): T | undefined => (items.length === 0 ? undefined : items[index % items.length]);

          for (const step of ops) {
            switch (step.op) {
              case 'reserve': {
                const subject = subjects[step.key] as (typeof subjects)[0];
                const result = await store.reserve({
                  holdId: `h${seq++}`,
                  subject,
                  quote: { tokens: step.tokens, micros: step.micros, output: { wantTokens: Math.max(step.want, step.min), minTokens: step.min, microsPerMillion: step.price } },
                  now,
                  ttlMs: TTL,
                  ...(step.pending ? { pending: { model: 'gpt-test', inputTokens: step.tokens, price: null, sessionId: null, tags: {} } } : {}),
                });
                if (result.ok) {
                  expect(result.hold.outputTokens).toBeGreaterThanOrEqual(step.min);
                  expect(result.hold.outputTokens).toBeLessThanOrEqual(Math.max(step.want, step.min));
                  live.set(result.hold.id, result.hold);
                }
                break;
              }
              case 'extend': {
                const hold = pick([...live.values()], step.hold);
                if (!hold) break;
                const result = await store.extend(hold.id, { tokens: step.tokens, micros: step.micros }, now, TTL, step.delivered);
                if (result.ok) live.set(hold.id, result.hold);
                break;
              }
              case 'settle': {
                const hold = pick([...live.values()], step.hold);
                if (!hold) break;
                // A request charges at most what it holds; split between input and output.
                const tokens = Math.floor(hold.tokens * step.share);
                const input = Math.floor(tokens / 3);
                const usage: Usage = {
                  model: 'gpt-test',
                  inputTokens: input,
                  outputTokens: tokens - input,
                  cachedTokens: Math.floor(input / 2),
                  reasoningTokens: 0,
                  costMicros: Math.floor(hold.micros * step.share),
                  source: 'upstream',
                  outcome: 'ok',
                  latencyMs: 5,
                  sessionId: null,
                  tags: {},
                };
                const result = await store.settle({ holdId: hold.id, subject: hold.subject, usage, now });
                expect(result.duplicate).toBe(false);
                live.delete(hold.id);
                settled.push(hold.id);
                break;
              }
              case 'settleAgain': {
                const id = pick(settled, step.entry);
                if (!id) break;
                const before = await store.counterAudit();
                const again = await store.settle({
                  holdId: id,
                  subject: subjects[0] as (typeof subjects)[0],
                  usage: {
                    model: 'other',
                    inputTokens: 999,
                    outputTokens: 999,
                    cachedTokens: 0,
                    reasoningTokens: 0,
                    costMicros: 999,
                    source: 'estimated',
                    outcome: 'ok',
                    latencyMs: 1,
                    sessionId: null,
                    tags: {},
                  },
                  now,
                });
                expect(again.duplicate).toBe(true);
                expect(again.entry.requestId).toBe(id);
                expect(again.entry.model).toBe('gpt-test');
                expect(await store.counterAudit()).toEqual(before);
                break;
              }
              case 'release': {
                const hold = pick([...live.values()], step.hold);
                if (!hold) break;
                expect(await store.release(hold.id)).toBe(true);
                expect(await store.release(hold.id)).toBe(false);
                live.delete(hold.id);
                break;
              }
              case 'advance':
                now += step.ms;
                break;
              case 'crash': {
                // The request dies without a word: its hold expires after the TTL.
                const hold = pick([...live.values()], step.hold);
                if (!hold) break;
                now = Math.max(now, hold.expiresAt);
                const expired = await store.expireHolds(now);
                expect(expired).toBeGreaterThanOrEqual(1);
                for (const [id, h] of live) if (h.expiresAt <= now) live.delete(id);
                break;
              }
            }
            await checkInvariants(store, subjects, live, now);
          }
          expect((await store.listHolds()).map((h) => h.id).sort()).toEqual([...live.keys()].sort());
        } finally {
          await store.close();
        }
      }),
      { numRuns: RUNS[name] },
    );
  }, 120_000);

  it('dollar limits are enforced in micro-dollars', async () => {
    const store = await open({ defaultBudgets: [{ scope: 'user', window: { kind: 'total' }, limitTokens: null, limitUsd: 0.01, onLimit: 'reject' }] });
    const { subject } = await userWithKey(store, 'alice');
    const limit = usdToMicros(0.01);
    const first = await store.reserve({ holdId: 'a', subject, quote: { tokens: 0, micros: limit - 1 }, now: T0, ttlMs: TTL });
    expect(first.ok).toBe(true);
    const second = await store.reserve({ holdId: 'b', subject, quote: { tokens: 0, micros: 2 }, now: T0, ttlMs: TTL });
    expect(second.ok).toBe(false);
    const third = await store.reserve({ holdId: 'c', subject, quote: { tokens: 0, micros: 1 }, now: T0, ttlMs: TTL });
    expect(third.ok).toBe(true);
    await store.close();
  });
});
