import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../alerts/alert-event.js';
import type { Budget } from '../quota/budgets.js';
import { T0, userWithKey } from '../testing/harness.js';
import { TTL } from './testing/store-fixtures.js';
import { storeKinds } from './testing/store-kinds.js';
import type { QuotaRequest, QuotaRequestInput, RequestDecision, Store } from './types.js';

const DAY = 86_400_000;
const DAY_END = T0 + DAY / 2;

async function dayBudget(store: Store, limitTokens: number): Promise<Budget> {
  const { budget } = await store.putBudget(
    { scope: { kind: 'user', id: 'alice' }, window: { kind: 'day', timeZone: 'UTC' }, limitTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
    T0,
  );
  return budget;
}

const ask = (budget: Budget, keyId: string, amountTokens = 500): QuotaRequestInput => ({
  userId: 'alice',
  keyId,
  scope: budget.scope,
  budgetKey: budget.key,
  amountTokens,
  amountMicros: 0,
  reason: 'a deadline',
});

const approve = (tokens: number, decidedBy: 'admin' | 'link' | 'policy' = 'admin'): RequestDecision => ({
  state: 'approved',
  decidedBy,
  grant: { tokens, micros: 0, startsAt: T0 + 1, endsAt: DAY_END },
});

/** A minimal alert for a request, as a route would build it. */
const noticeOf = (kind: 'request' | 'request_decided') => (request: QuotaRequest): AlertEvent => ({
  id: `alert_${kind}_${request.id}`,
  kind,
  scope: 'user:alice',
  subjectName: 'ALICE',
  window: { kind: 'day', timeZone: 'UTC' },
  threshold: null,
  percentage: 100,
  usage: 1_000,
  limit: 1_000,
  unit: 'tokens',
  resetsAt: null,
  firedAt: new Date(T0).toISOString(),
  projectedAt: null,
  topConsumers: [],
});

describe.each(storeKinds())('$name store: increase requests', ({ open }) => {
  it('keeps one open request per user and budget, lists them, and grants an approval in the same step', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 1_000);

    const created = await store.createQuotaRequest(ask(budget, subject.keyId), T0);
    if (!created.ok) throw new Error('not created');
    const request = created.value;
    expect(request).toMatchObject({ state: 'open', amountTokens: 500, decidedAt: null, decidedBy: null, grantId: null });
    expect(request.id).toMatch(/^req_/);
    expect(await store.createQuotaRequest(ask(budget, subject.keyId, 10), T0)).toEqual({ ok: false, reason: 'exists', field: 'budgetKey' });
    expect(await store.createQuotaRequest({ ...ask(budget, subject.keyId), userId: 'nobody' }, T0)).toMatchObject({ ok: false, reason: 'missing-reference' });
    expect(await store.getQuotaRequest(request.id)).toEqual(request);
    expect((await store.listQuotaRequests({ state: 'open' })).map((r) => r.id)).toEqual([request.id]);
    expect(await store.listQuotaRequests({ state: 'approved' })).toEqual([]);
    expect(await store.listQuotaRequests({ userId: 'bob' })).toEqual([]);

    // At the limit, nothing more is admitted; the approval (of a changed amount) raises it at once.
    expect((await store.reserve({ holdId: 'a', subject, quote: { tokens: 1_200, micros: 0 }, now: T0 + 2, ttlMs: TTL })).ok).toBe(false);
    const decision = await store.decideQuotaRequest(request.id, approve(300), T0 + 1);
    if (!decision.ok || !decision.grant) throw new Error('not decided');
    expect(decision.request).toMatchObject({ state: 'approved', decidedBy: 'admin', decidedAt: T0 + 1, grantedTokens: 300, grantedMicros: 0, grantId: decision.grant.id });
    expect(decision.grant).toMatchObject({ budgetKey: budget.key, tokens: 300, decidedBy: 'admin', requestId: request.id, reason: 'a deadline', endsAt: DAY_END });
    expect((await store.reserve({ holdId: 'b', subject, quote: { tokens: 1_200, micros: 0 }, now: T0 + 2, ttlMs: TTL })).ok).toBe(true);
    expect((await store.listGrants({})).map((g) => g.requestId)).toEqual([request.id]);

    // Decided once: another decision changes nothing, and a new request may be opened.
    expect(await store.decideQuotaRequest(request.id, { state: 'denied', decidedBy: 'link' }, T0 + 3)).toMatchObject({ ok: false, reason: 'not-open', request: { state: 'approved' } });
    expect(await store.decideQuotaRequest('req_nope', { state: 'denied', decidedBy: 'link' }, T0 + 3)).toEqual({ ok: false, reason: 'not-found' });
    expect((await store.createQuotaRequest(ask(budget, subject.keyId), T0 + 4)).ok).toBe(true);
  });

  it('tells each decision once', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 1_000);
    const created = await store.createQuotaRequest(ask(budget, subject.keyId), T0);
    if (!created.ok) throw new Error('not created');
    expect(await store.unseenDecisions('alice')).toEqual([]);
    await store.decideQuotaRequest(created.value.id, { state: 'denied', decidedBy: 'admin' }, T0 + 1);
    expect((await store.unseenDecisions('alice')).map((r) => [r.id, r.state])).toEqual([[created.value.id, 'denied']]);
    expect(await store.markRequestSeen([created.value.id], T0 + 2)).toEqual([created.value.id]);
    expect(await store.markRequestSeen([created.value.id], T0 + 3)).toEqual([]);
    expect(await store.unseenDecisions('alice')).toEqual([]);
    expect((await store.getQuotaRequest(created.value.id))?.seenAt).toBe(T0 + 2);
  });

  it('grants once when two approvals race', async () => {
    const store = await open();
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 1_000);
    const created = await store.createQuotaRequest(ask(budget, subject.keyId), T0);
    if (!created.ok) throw new Error('not created');
    const results = await Promise.all([
      store.decideQuotaRequest(created.value.id, approve(500, 'admin'), T0 + 1, noticeOf('request_decided')),
      store.decideQuotaRequest(created.value.id, approve(700, 'link'), T0 + 1, noticeOf('request_decided')),
      store.decideQuotaRequest(created.value.id, approve(900, 'policy'), T0 + 1, noticeOf('request_decided')),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual(['not-open', 'not-open']);
    const grants = await store.listGrants({});
    expect(grants).toHaveLength(1);
    const [state] = await store.budgetStates([{ kind: 'user', id: 'alice' }], T0 + 2);
    expect(state?.budget.limitTokens).toBe(1_000 + (grants[0]?.tokens ?? 0));
    expect((await store.listAlerts({ kind: 'request_decided', limit: 10 }))).toHaveLength(1);
  });

  it('records a request alert in the same step as the request, and none for a refused one', async () => {
    const store = await open({ alerts: { channelsFor: () => ['ops'], projection: false } });
    const { subject } = await userWithKey(store, 'alice');
    const budget = await dayBudget(store, 1_000);
    const created = await store.createQuotaRequest(ask(budget, subject.keyId), T0, noticeOf('request'));
    expect(created.ok).toBe(true);
    expect((await store.createQuotaRequest(ask(budget, subject.keyId), T0, noticeOf('request'))).ok).toBe(false);
    const alerts = await store.listAlerts({ limit: 10 });
    expect(alerts.map((a) => a.alert.kind)).toEqual(['request']);
    expect((await store.dueDeliveries(T0, 10)).map((d) => d.channel)).toEqual(['ops']);
  });
});
