import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../config/schema.js';
import { T0, testService, userWithKey } from '../testing/harness.js';

const settle = (svc: ReturnType<typeof testService>, subject: { userId: string; projectId: string | null; keyId: string }, id: string, tokens: number, costMicros = 0) =>
  svc.store.settle({
    holdId: id,
    subject,
    usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
    now: svc.clock.now(),
  });

const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

describe('GET /quota', () => {
  it('answers a user key with its own status in the DESIGN shape', async () => {
    const svc = testService({ defaultBudgets: [userMonthly] });
    const alice = await userWithKey(svc.store, 'alice');
    await settle(svc, alice.subject, 'r1', 78_500, 1_230_000);
    const response = await svc.as(alice.secret, '/quota');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      subject: { kind: 'user', id: 'alice', name: 'ALICE' },
      usage: 78_500,
      limit: 100_000,
      unit: 'tokens',
      percentage: 78.5,
      remaining: 21_500,
      status: 'normal',
      nextReset: '2026-12-01T00:00:00+08:00',
      budgets: [
        {
          id: 'config:user:alice|month',
          source: 'config',
          scope: 'user:alice',
          window: { kind: 'month', timeZone: 'Asia/Shanghai' },
          usedTokens: 78_500,
          reservedTokens: 0,
          limitTokens: 100_000,
          remainingTokens: 21_500,
          usedUsd: 1.23,
          reservedUsd: 0,
          limitUsd: null,
          remainingUsd: null,
          percentage: 78.5,
          status: 'normal',
          resetsAt: '2026-12-01T00:00:00+08:00',
          onLimit: 'reject',
        },
      ],
    });
  });

  it('puts the binding budget on top: the project budget nearest to exhaustion, in dollars', async () => {
    const svc = testService({
      defaultBudgets: [userMonthly, { scope: 'project', window: { kind: 'day', timeZone: 'UTC' }, limitTokens: null, limitUsd: 10, onLimit: 'reject' }],
    });
    const alice = await userWithKey(svc.store, 'alice', 'research');
    const bob = await userWithKey(svc.store, 'bob', 'research');
    await settle(svc, alice.subject, 'a', 1_000, 4_000_000);
    await settle(svc, bob.subject, 'b', 1_000, 5_600_000);
    const status = (await (await svc.as(alice.secret, '/quota')).json()) as Record<string, unknown> & { budgets: Array<{ scope: string; status: string }> };
    expect(status).toMatchObject({ usage: 9.6, limit: 10, unit: 'usd', percentage: 96, status: 'critical', nextReset: '2026-11-23T00:00:00Z' });
    expect((status.remaining as number).toFixed(6)).toBe('0.400000');
    expect(status.budgets.map((b) => [b.scope, b.status])).toEqual([
      ['user:alice', 'normal'],
      ['project:research', 'critical'],
    ]);
  });

  it('counts reservations of requests in flight as not remaining, and shows them', async () => {
    const svc = testService({ defaultBudgets: [userMonthly] });
    const alice = await userWithKey(svc.store, 'alice');
    await svc.store.reserve({ holdId: 'live', subject: alice.subject, quote: { tokens: 30_000, micros: 0 }, now: T0, ttlMs: 60_000 });
    const status = (await (await svc.as(alice.secret, '/quota')).json()) as { usage: number; remaining: number; budgets: Array<{ reservedTokens: number }> };
    expect([status.usage, status.remaining, status.budgets[0]?.reservedTokens]).toEqual([0, 70_000, 30_000]);
  });

  it('is not normal when requests in flight hold the whole budget: critical, exceeded only once spent; the held budget binds', async () => {
    const svc = testService({ defaultBudgets: [userMonthly, { scope: 'global', window: { kind: 'total' }, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject' }] });
    const alice = await userWithKey(svc.store, 'alice');
    const bob = await userWithKey(svc.store, 'bob');
    await settle(svc, bob.subject, 'b', 500_000); // the global budget is half used
    await svc.store.reserve({ holdId: 'live', subject: alice.subject, quote: { tokens: 100_000, micros: 0 }, now: T0, ttlMs: 60_000 });
    type Status = { usage: number; remaining: number; percentage: number; status: string; budgets: Array<{ scope: string; status: string; reservedTokens: number }> };
    const held = (await (await svc.as(alice.secret, '/quota')).json()) as Status;
    expect(held).toMatchObject({ usage: 0, remaining: 0, percentage: 0, status: 'critical' });
    expect(held.budgets.map((b) => [b.scope, b.status, b.reservedTokens])).toEqual([
      ['user:alice', 'critical', 100_000],
      ['global', 'normal', 100_000], // 600,000 of 1,000,000 with the hold: below 80 %
    ]);

    await settle(svc, alice.subject, 'live', 100_000);
    const spent = (await (await svc.as(alice.secret, '/quota')).json()) as Status;
    expect(spent).toMatchObject({ usage: 100_000, remaining: 0, percentage: 100, status: 'exceeded' });
  });

  it('answers without budgets: usage unknown, status normal', async () => {
    const svc = testService();
    const alice = await userWithKey(svc.store, 'alice');
    expect(await (await svc.as(alice.secret, '/quota')).json()).toEqual({
      subject: { kind: 'user', id: 'alice', name: 'ALICE' },
      usage: null,
      limit: null,
      unit: null,
      percentage: null,
      remaining: null,
      status: 'normal',
      nextReset: null,
      budgets: [],
    });
  });

  it('gives the admin every subject, and any one of them by name', async () => {
    const svc = testService({ defaultBudgets: [userMonthly, { scope: 'global', window: { kind: 'total' }, limitTokens: 1_000_000, limitUsd: null, onLimit: 'reject' }] });
    const alice = await userWithKey(svc.store, 'alice', 'research');
    await userWithKey(svc.store, 'bob');
    await settle(svc, alice.subject, 'a', 85_000);
    const all = (await (await svc.admin('GET', '/quota')).json()) as { subjects: Array<{ subject: { kind: string; id: string }; status: string; percentage: number }> };
    expect(all.subjects.map((s) => [`${s.subject.kind}:${s.subject.id}`, s.status, s.percentage])).toEqual([
      ['global:global', 'normal', 8.5],
      ['project:research', 'normal', 8.5],
      ['user:alice', 'warning', 85],
      ['user:bob', 'normal', 8.5],
    ]);
    const one = (await (await svc.admin('GET', '/quota/user:alice')).json()) as { usage: number; budgets: unknown[] };
    expect(one.usage).toBe(85_000);
    expect(one.budgets).toHaveLength(2);
    expect(((await (await svc.admin('GET', '/quota/alice')).json()) as { usage: number }).usage).toBe(85_000);
    expect(((await (await svc.admin('GET', '/quota/project:research')).json()) as { subject: unknown }).subject).toEqual({ kind: 'project', id: 'research', name: 'research' });
    expect((await svc.admin('GET', `/quota/key:${alice.subject.keyId}`)).status).toBe(200);
  });

  it('reads the status in the window of the fixed clock: a new month starts at zero', async () => {
    const svc = testService({ defaultBudgets: [userMonthly] });
    const alice = await userWithKey(svc.store, 'alice');
    await settle(svc, alice.subject, 'a', 99_000);
    expect(((await (await svc.as(alice.secret, '/quota')).json()) as { status: string }).status).toBe('critical');
    svc.clock.set(Date.parse('2026-12-01T00:00:00+08:00'));
    expect(await (await svc.as(alice.secret, '/quota')).json()).toMatchObject({ usage: 0, status: 'normal', nextReset: '2027-01-01T00:00:00+08:00' });
  });
});
