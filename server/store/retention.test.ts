import { describe, expect, it } from 'vitest';
import type { RequestSubject, Scope } from '../quota/scope.js';
import { T0, userWithKey } from '../testing/harness.js';
import type { BudgetInput, UsageGroupBy, UsageQuery } from './types.js';
import { storeKinds, type AuditedStore } from './testing/store-kinds.js';

const DAY = 86_400_000;
const NOW = T0; // 2026-11-22T12:00:00Z: the fixed clock of every step below

/** 100 days of traffic, about 13 entries a day at irregular minutes, over three users, two models. */
async function seed(store: AuditedStore): Promise<RequestSubject[]> {
  const subjects = [
    (await userWithKey(store, 'alice', 'research')).subject,
    (await userWithKey(store, 'bob', 'research')).subject,
    (await userWithKey(store, 'carol')).subject,
  ];
  const settles: Array<Promise<unknown>> = [];
  const start = NOW - 100 * DAY;
  for (let i = 0; start + i * 6_700_000 < NOW; i++) {
    const at = start + i * 6_700_000 + ((i * 7_919_000) % 3_600_000);
    if (at >= NOW) break;
    const subject = subjects[i % 3] as RequestSubject;
    settles.push(
      store.settle({
        holdId: `req-${i}`,
        subject,
        now: at,
        usage: {
          model: i % 5 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
          inputTokens: 100 + (i % 37) * 11,
          outputTokens: 50 + (i % 13) * 7,
          cachedTokens: i % 4 === 0 ? 40 : 0,
          reasoningTokens: i % 6 === 0 ? 9 : 0,
          costMicros: 1_000 + (i % 17) * 313,
          source: 'upstream',
          outcome: 'ok',
          latencyMs: 20 + (i % 9),
          sessionId: null,
          tags: {},
        },
      }),
    );
  }
  await Promise.all(settles);
  return subjects;
}

const BUDGETS: BudgetInput[] = [
  // All time: reaches back past any cutoff, so it must count the rollup.
  { scope: { kind: 'user', id: 'alice' }, window: { kind: 'total' }, limitTokens: 100_000_000, limitMicros: null, thresholds: [], onLimit: 'reject', downgradeTo: null },
  // A month that starts at a quarter-hour offset (UTC+05:45): exact only with quarter-hour slots.
  { scope: { kind: 'user', id: 'alice' }, window: { kind: 'month', timeZone: 'Asia/Kathmandu' }, limitTokens: 10_000_000, limitMicros: null, thresholds: [], onLimit: 'reject', downgradeTo: null },
  { scope: { kind: 'project', id: 'research' }, window: { kind: 'month', timeZone: 'America/New_York' }, limitTokens: null, limitMicros: 900_000_000, thresholds: [], onLimit: 'reject', downgradeTo: null },
  { scope: { kind: 'global' }, window: { kind: 'week', timeZone: 'Asia/Kolkata' }, limitTokens: 50_000_000, limitMicros: null, thresholds: [], onLimit: 'reject', downgradeTo: null },
  { scope: { kind: 'global' }, window: { kind: 'total' }, limitTokens: null, limitMicros: 10_000_000_000, thresholds: [], onLimit: 'reject', downgradeTo: null },
];

const GROUPINGS: UsageGroupBy[][] = [['user'], ['project'], ['key'], ['model'], ['user', 'model'], ['project', 'key'], ['day'], ['day', 'model'], ['user', 'day']];
const ZONES = ['UTC', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/New_York', 'Australia/Adelaide'];

async function reports(store: AuditedStore): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const groupBy of GROUPINGS) {
    for (const timeZone of groupBy.includes('day') ? ZONES : ['UTC']) {
      const query: UsageQuery = { groupBy, from: NOW - 120 * DAY, to: NOW + DAY, timeZone };
      out.push({ groupBy, timeZone, rows: await store.usageReport(query) });
    }
  }
  // A range that starts and ends on local midnights inside the rolled-up period.
  out.push(await store.usageReport({ groupBy: 'user', from: Date.parse('2026-09-01T00:00:00+05:45'), to: Date.parse('2026-10-01T00:00:00+05:45'), timeZone: 'UTC' }));
  return out;
}

const SCOPES: Scope[] = [{ kind: 'user', id: 'alice' }, { kind: 'project', id: 'research' }, { kind: 'global' }];

async function usage(store: AuditedStore) {
  const states = await store.budgetStates(SCOPES, NOW);
  return states.map((s) => ({ key: s.budget.key, usedTokens: s.usage.usedTokens, usedMicros: s.usage.usedMicros })).sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** Budgets put again are counted from scratch: from the ledger and its rollup, not a cached counter. */
async function recountedUsage(store: AuditedStore) {
  for (const b of BUDGETS) await store.putBudget(b, NOW);
  return usage(store);
}

const kinds = storeKinds();
/** What each store reported, so the two can be compared with each other at the end. */
const seen = new Map<string, unknown>();

describe.each(kinds)('$name store: retention (fixed clock)', ({ name, open }) => {
  it('rolls old entries up and deletes them, leaving every report and budget exactly as it was', async () => {
    const store = await open({ defaultThresholds: [] });
    for (const b of BUDGETS) await store.putBudget(b, NOW - 101 * DAY);
    await seed(store);
    const all = await store.recentEntries(1_000_000);
    const reportsBefore = await reports(store);
    const usageBefore = await usage(store);
    expect(usageBefore.find((u) => u.key === 'user:alice|total')?.usedTokens).toBeGreaterThan(0);
    expect(await recountedUsage(store)).toEqual(usageBefore);
    // Key ids are random per store: name each by its user, so the two stores compare.
    let facts = JSON.stringify({ reportsBefore, usageBefore });
    for (const key of await store.listKeys()) facts = facts.replaceAll(key.id, `key-of-${key.userId}`);
    seen.set(name, JSON.parse(facts));

    // 90 days, then 5 (inside the current month and week: the month and week budgets read the rollup too).
    for (const days of [90, 5]) {
      const cutoff = NOW - days * DAY;
      const old = all.filter((e) => e.at < Math.floor(cutoff / 900_000) * 900_000).length;
      expect(old).toBeGreaterThan(0);
      // Small batches, so one quarter hour's entries land in two batches and are merged.
      const rolled = await store.rollUpLedger(cutoff, 7);
      expect(rolled).toBe(old - (days === 5 ? all.filter((e) => e.at < Math.floor((NOW - 90 * DAY) / 900_000) * 900_000).length : 0));

      const left = await store.recentEntries(1_000_000);
      expect(left.length).toBe(all.length - old);
      expect(left.every((e) => e.at >= cutoff - 900_000)).toBe(true);

      expect(await reports(store)).toEqual(reportsBefore);
      expect(await usage(store)).toEqual(usageBefore);
      expect(await recountedUsage(store)).toEqual(usageBefore);
      for (const c of await store.counterAudit()) expect(c.cached ?? c.stored, `${c.budgetKey}@${c.bucketStart}`).toEqual(c.ledger);
    }
    // Nothing left to do: a second pass moves nothing.
    expect(await store.rollUpLedger(NOW - 5 * DAY)).toBe(0);
    await store.close();
  });
});

describe('SQLite and PostgreSQL agree', () => {
  it('give the same reports (every grouping and zone) and the same budget usage for the same ledger', () => {
    expect(seen.size).toBe(2);
    expect(seen.get('postgres')).toEqual(seen.get('sqlite'));
  });
});
