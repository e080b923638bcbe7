import { describe, expect, it } from 'vitest';
import { T0, testService, userWithKey } from '../testing/harness.js';
import type { Outcome } from '../store/types.js';

/**
 * `GET /quota/:subject/usage` and `/ledger`: a user's own history for the `/me` page. A user key
 * reads its own user's and nobody else's; the admin token anyone's.
 */
const DAY = 86_400_000;

async function twoPeople() {
  const svc = testService();
  const alice = await userWithKey(svc.store, 'alice', 'research');
  const bob = await userWithKey(svc.store, 'bob', 'research');
  let n = 0;
  const spend = (who: typeof alice, model: string, tokens: number, at: number, outcome: Outcome = 'ok') =>
    svc.store.settle({
      holdId: `r${++n}`,
      subject: who.subject,
      usage: { model, inputTokens: tokens - 10, outputTokens: 10, cachedTokens: 0, reasoningTokens: 0, costMicros: tokens * 2, source: 'upstream', outcome, latencyMs: 1, sessionId: 'chat-42', tags: { task: 'secret-plan' } },
      now: at,
    });
  // 2026-11-22T12:00Z is 20:00 in Shanghai; 17:00Z on the 21st is already the 22nd there.
  await spend(alice, 'gpt-4o', 1_000, T0 - 2 * DAY);
  await spend(alice, 'gpt-4o-mini', 300, Date.parse('2026-11-21T17:00:00Z'));
  await spend(alice, 'gpt-4o', 50, T0 - 60_000, 'cut_off');
  await spend(bob, 'bobs-private-model', 7_777, T0 - DAY);
  await spend(bob, 'bobs-private-model', 11, T0);
  return { svc, alice, bob };
}

const get = async (svc: ReturnType<typeof testService>, token: string, path: string) => {
  const response = await svc.as(token, path);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('GET /quota/:subject/usage', () => {
  it('gives the key’s own user their usage by local day and model, the last 30 days by default', async () => {
    const { svc, alice } = await twoPeople();
    const { status, body } = await get(svc, alice.secret, '/quota/alice/usage?tz=Asia/Shanghai');
    expect(status).toBe(200);
    expect(body).toMatchObject({ subject: 'user:alice', timeZone: 'Asia/Shanghai', groupBy: 'day,model', from: '2026-10-23T16:00:00.000Z', to: new Date(T0 + 1).toISOString() });
    const days = body.days as string[];
    expect(days).toHaveLength(30);
    expect([days[0], days.at(-1)]).toEqual(['2026-10-24', '2026-11-22']);
    expect((body.rows as Array<Record<string, unknown>>).map((r) => [r.day, r.model, r.requests, r.totalTokens, r.costUsd])).toEqual([
      ['2026-11-20', 'gpt-4o', 1, 1_000, 0.002],
      ['2026-11-22', 'gpt-4o-mini', 1, 300, 0.0006],
      ['2026-11-22', 'gpt-4o', 1, 50, 0.0001],
    ]);
    expect(body.totals).toMatchObject({ requests: 3, totalTokens: 1_350, costUsd: 0.0027 });
    expect(JSON.stringify(body)).not.toContain('bob');
  });

  it('takes from, to and tz, and names the field of a bad one', async () => {
    const { svc, alice } = await twoPeople();
    const utc = await get(svc, alice.secret, `/quota/user:alice/usage?from=${new Date(T0 - DAY).toISOString()}&to=${new Date(T0 + 1).toISOString()}`);
    expect((utc.body.rows as Array<Record<string, unknown>>).map((r) => [r.day, r.model])).toEqual([
      ['2026-11-21', 'gpt-4o-mini'],
      ['2026-11-22', 'gpt-4o'],
    ]);
    expect(utc.body.days).toEqual(['2026-11-21', '2026-11-22']);
    for (const [query, field] of [
      ['tz=Mars/Olympus', 'tz'],
      ['from=yesterday', 'from'],
      [`from=${new Date(T0).toISOString()}&to=${new Date(T0 - DAY).toISOString()}`, 'from'],
      [`from=${new Date(T0 - 400 * DAY).toISOString()}`, 'from'],
      ['groupBy=user', 'query'],
    ] as const) {
      const bad = await get(svc, alice.secret, `/quota/alice/usage?${query}`);
      expect(bad.status, query).toBe(400);
      expect((bad.body.error as { message: string }).message.startsWith(`${field}`), `${query}: ${JSON.stringify(bad.body)}`).toBe(true);
    }
  });

  it('never gives one user another’s usage, whether the other exists or not', async () => {
    const { svc, alice, bob } = await twoPeople();
    for (const subject of ['bob', 'user:bob', 'user:nobody', 'nobody', 'project:research', 'global', `key:${bob.subject.keyId}`]) {
      const answer = await get(svc, alice.secret, `/quota/${encodeURIComponent(subject)}/usage`);
      expect([400, 403], subject).toContain(answer.status);
      expect(JSON.stringify(answer.body)).not.toContain('bobs-private-model');
    }
    expect((await get(svc, alice.secret, '/quota/bob/usage')).body).toEqual({ error: { code: 'forbidden', message: 'a user key can only read its own history' } });
    expect((await get(svc, alice.secret, '/quota/nobody/usage')).status).toBe(403);
    // Bob, with his own key, sees his own.
    const own = await get(svc, bob.secret, '/quota/bob/usage');
    expect((own.body.rows as Array<{ model: string }>).map((r) => r.model)).toEqual(['bobs-private-model', 'bobs-private-model']);
  });

  it('is read by the admin token for any user there is; a wrong or revoked key gets 401', async () => {
    const { svc, alice } = await twoPeople();
    const answer = await svc.admin('GET', '/quota/bob/usage');
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { totals: { totalTokens: number } }).totals.totalTokens).toBe(7_788);
    expect((await svc.admin('GET', '/quota/nobody/usage')).status).toBe(404);
    expect((await svc.app.request('/quota/alice/usage')).status).toBe(401);
    await svc.admin('DELETE', `/admin/keys/${alice.subject.keyId}`);
    expect((await svc.as(alice.secret, '/quota/alice/usage')).status).toBe(401);
  });
});

describe('GET /quota/:subject/ledger', () => {
  it('lists the key’s own user’s newest requests: model, tokens, cost and outcome, never text, sessions or tags', async () => {
    const { svc, alice } = await twoPeople();
    const { status, body } = await get(svc, alice.secret, '/quota/alice/ledger?limit=2');
    expect(status).toBe(200);
    expect(body).toEqual({
      subject: 'user:alice',
      entries: [
        { at: new Date(T0 - 60_000).toISOString(), model: 'gpt-4o', inputTokens: 40, outputTokens: 10, cachedTokens: 0, reasoningTokens: 0, totalTokens: 50, costUsd: 0.0001, outcome: 'cut_off', source: 'upstream' },
        { at: '2026-11-21T17:00:00.000Z', model: 'gpt-4o-mini', inputTokens: 290, outputTokens: 10, cachedTokens: 0, reasoningTokens: 0, totalTokens: 300, costUsd: 0.0006, outcome: 'ok', source: 'upstream' },
      ],
    });
    expect(JSON.stringify(body)).not.toMatch(/chat-42|secret-plan|bob/);
    expect(((await get(svc, alice.secret, '/quota/alice/ledger')).body.entries as unknown[]).length).toBe(3);
  });

  it('never lists another user’s requests', async () => {
    const { svc, alice } = await twoPeople();
    for (const subject of ['bob', 'user:bob', 'nobody', 'global']) {
      const answer = await get(svc, alice.secret, `/quota/${subject}/ledger`);
      expect([400, 403], subject).toContain(answer.status);
      expect(JSON.stringify(answer.body)).not.toContain('bobs-private-model');
    }
    expect((await get(svc, alice.secret, '/quota/alice/ledger?limit=0')).status).toBe(400);
    expect((await get(svc, alice.secret, '/quota/alice/ledger?limit=101')).status).toBe(400);
  });
});
