import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureAdminToken } from '../../auth/admin-token.js';
import { hashSecret, newUserKey } from '../../auth/secrets.js';
import { createApp } from '../../app.js';
import { ManualClock } from '../../clock.js';
import type { DefaultBudget } from '../../config/schema.js';
import { Upstreams } from '../../proxy/upstreams.js';
import { ADMIN_TOKEN, T0, testConfig, userWithKey } from '../../testing/harness.js';
import { startTcpForwarder, type TcpForwarder } from '../../testing/tcp-forwarder.js';
import { failOpen } from '../fail-open-store.js';
import { StoreUnavailableError } from '../store-unavailable.js';
import { postgresTestSchema, TEST_DATABASE_URL } from '../testing/store-kinds.js';
import type { PendingCharge, Store } from '../types.js';
import { usage as usageOf } from '../testing/store-fixtures.js';
import { recoverHolds } from '../../proxy/recover-holds.js';

/**
 * What only PostgreSQL has to show: several instances on one database. Each "instance" here is a
 * PostgresStore with its own pool and id, as two processes would have.
 */

const TTL = 60_000;
const db = postgresTestSchema();
beforeEach(() => db.reset());

const userTokens = (limitTokens: number): DefaultBudget => ({ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens, limitUsd: null, onLimit: 'reject' });

const usage = (outputTokens: number) => usageOf(0, outputTokens);

const pending: PendingCharge = { model: 'gpt-4o-mini', inputTokens: 100, price: null, sessionId: null, tags: {} };

describe('PostgresStore across instances', () => {
  it('two instances admitting 200 concurrent requests against one budget never reserve or charge past it', async () => {
    const a = await db.open({ defaultBudgets: [userTokens(10_000)], instanceId: 'a' });
    const b = await db.open({ defaultBudgets: [userTokens(10_000)], instanceId: 'b' });
    const { subject } = await userWithKey(a, 'alice');
    // Each asks for 100 tokens of prompt and up to 200 of output: at most ~33 whole requests fit.
    const quote = { tokens: 100, micros: 0, output: { wantTokens: 200, minTokens: 1, microsPerMillion: 0 } };
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).reserve({ holdId: `r${i}`, subject, quote, now: T0, ttlMs: TTL })),
    );
    const admitted = results.flatMap((r) => (r.ok ? [r.hold] : []));
    const reserved = admitted.reduce((sum, h) => sum + h.tokens, 0);
    expect(reserved).toBeLessThanOrEqual(10_000);
    // The last ones in took what was left (clamped allowance): refused only once less than a
    // prompt plus one output token (101) remained.
    expect(reserved).toBeGreaterThan(10_000 - 101);
    expect(admitted.length).toBeGreaterThanOrEqual(33);
    const [state] = await b.budgetStates([{ kind: 'user', id: 'alice' }], T0);
    expect(state?.usage).toMatchObject({ usedTokens: 0, reservedTokens: reserved });

    // Settle everything, each on the other instance, at its full hold: what was reserved is charged.
    await Promise.all(admitted.map((h, i) => (i % 2 === 0 ? b : a).settle({ holdId: h.id, subject, usage: usage(h.tokens), now: T0 })));
    const [after] = await a.budgetStates([{ kind: 'user', id: 'alice' }], T0);
    expect(after?.usage).toEqual({ usedTokens: reserved, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    expect(await a.listHolds()).toEqual([]);
    for (const row of await a.counterAudit()) expect(row.stored).toEqual(row.ledger);
  });

  it('each threshold fires once in total when instances settle across it at the same moment', async () => {
    const alerts = { channelsFor: () => ['ops'], projection: false };
    const a = await db.open({ defaultBudgets: [userTokens(1_000)], alerts, instanceId: 'a' });
    const b = await db.open({ defaultBudgets: [userTokens(1_000)], alerts, instanceId: 'b' });
    const { subject } = await userWithKey(a, 'alice');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).settle({ holdId: `s${i}`, subject, usage: usage(50), now: T0 })),
    );
    const fired = await a.listAlerts({ limit: 100 });
    expect(fired.map((r) => r.alert.threshold).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual([50, 80, 90, 95, 100]);
  });

  it('outbox: two instances polling at once claim different deliveries; an unanswered claim is taken again after its lease', async () => {
    const alerts = { channelsFor: () => ['ops', 'mail'], projection: false };
    const a = await db.open({ defaultBudgets: [userTokens(1_000)], alerts, instanceId: 'a' });
    const b = await db.open({ defaultBudgets: [userTokens(1_000)], alerts, instanceId: 'b' });
    const { subject } = await userWithKey(a, 'alice');
    await a.settle({ holdId: 'big', subject, usage: usage(1_000), now: T0 }); // 50, 80, 90, 95, 100: 10 deliveries
    const [fromA, fromB] = await Promise.all([a.dueDeliveries(T0, 6), b.dueDeliveries(T0, 6)]);
    const claimed = [...fromA, ...fromB].map((d) => `${d.alert.id}/${d.channel}`);
    expect(claimed).toHaveLength(10);
    expect(new Set(claimed).size).toBe(10);
    expect(await a.dueDeliveries(T0 + 1_000, 100)).toEqual([]);

    for (const d of fromA) await a.markDelivered(d.alert.id, d.channel, T0 + 1);
    // b died mid-send: its claims come back once the lease (5 minutes) is over, and only those.
    const again = await a.dueDeliveries(T0 + 5 * 60_000, 100);
    expect(again.map((d) => `${d.alert.id}/${d.channel}`).sort()).toEqual(fromB.map((d) => `${d.alert.id}/${d.channel}`).sort());
  });

  it('an instance whose heartbeat stopped loses its holds to any other; a live one keeps them until their own expiry', async () => {
    const a = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'a', instanceTimeoutMs: 15_000 });
    const b = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'b', instanceTimeoutMs: 15_000 });
    const { subject } = await userWithKey(a, 'alice');
    await a.heartbeat(T0);
    await b.heartbeat(T0);
    const long = 3_600_000;
    expect((await a.reserve({ holdId: 'on-a', subject, quote: { tokens: 600, micros: 0 }, now: T0, ttlMs: long })).ok).toBe(true);
    expect((await b.reserve({ holdId: 'on-b', subject, quote: { tokens: 300, micros: 0 }, now: T0, ttlMs: long })).ok).toBe(true);
    // a is killed: no more heartbeats. b beats on; 15 s later a counts as gone.
    await b.heartbeat(T0 + 14_000);
    expect(await b.expireHolds(T0 + 14_000)).toBe(0);
    await b.heartbeat(T0 + 15_000);
    expect(await b.expireHolds(T0 + 15_000)).toBe(1);
    expect((await b.listHolds()).map((h) => h.id)).toEqual(['on-b']);
    const [state] = await b.budgetStates([{ kind: 'user', id: 'alice' }], T0 + 15_000);
    expect(state?.usage.reservedTokens).toBe(300);
    // An instance never declares itself gone, whatever the clock says.
    expect(await b.expireHolds(T0 + 30 * 60_000)).toBe(0);
  });

  it('instances starting together on a new database make one admin token: only one prints it, both accept it', async () => {
    const [a, b] = await Promise.all([db.open({ instanceId: 'a' }), db.open({ instanceId: 'b' })]);
    const [fromA, fromB] = await Promise.all([ensureAdminToken(a, undefined), ensureAdminToken(b, undefined)]);
    expect([fromA.generated, fromB.generated].filter((t) => t !== null)).toHaveLength(1);
    expect(fromA.hash).toBe(fromB.hash);
    expect(hashSecret((fromA.generated ?? fromB.generated) as string)).toBe(fromA.hash);
  });

  it('closing an instance releases its own holds without a pending charge at once, and leaves those with one to the others', async () => {
    const a = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'a' });
    const b = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'b' });
    const { subject } = await userWithKey(a, 'alice');
    await a.heartbeat(T0);
    await b.heartbeat(T0);
    await a.reserve({ holdId: 'on-a', subject, quote: { tokens: 600, micros: 0 }, now: T0, ttlMs: TTL });
    await a.reserve({ holdId: 'streaming-on-a', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL, pending });
    await b.reserve({ holdId: 'on-b', subject, quote: { tokens: 300, micros: 0 }, now: T0, ttlMs: TTL });
    await a.close();
    expect((await b.listHolds()).map((h) => h.id)).toEqual(['on-b', 'streaming-on-a']);
    // a said goodbye: b need not wait for its heartbeat to time out.
    const [recovered] = await recoverHolds(b, T0 + 1_000);
    expect(recovered?.entry).toMatchObject({ requestId: 'streaming-on-a', source: 'recovered', outcome: 'interrupted', inputTokens: 100 });
    expect((await b.listHolds()).map((h) => h.id)).toEqual(['on-b']);
  });

  it('instances recovering at once settle each orphaned hold once; one whose TTL ran out is recovered all the same', async () => {
    const timeout = { instanceTimeoutMs: 15_000 };
    const dead = await db.open({ defaultBudgets: [userTokens(100_000)], instanceId: 'dead', ...timeout });
    const { subject } = await userWithKey(dead, 'alice');
    await dead.heartbeat(T0);
    for (let i = 0; i < 20; i++) {
      await dead.reserve({ holdId: `s${i}`, subject, quote: { tokens: 100, micros: 0, output: { wantTokens: 256, minTokens: 1, microsPerMillion: 0 } }, now: T0, ttlMs: TTL, pending });
      await dead.extend(`s${i}`, { tokens: 256, micros: 0 }, T0 + 1_000, TTL, 200 + i);
    }
    // Found long after: the holds' own expiry (TTL) has passed too. Neither expiry releases them.
    const later = T0 + 10 * TTL;
    const [b, c] = await Promise.all([db.open({ instanceId: 'b', ...timeout }), db.open({ instanceId: 'c', ...timeout })]);
    await Promise.all([b.heartbeat(later), c.heartbeat(later)]);
    expect(await Promise.all([b.expireHolds(later), c.expireHolds(later)])).toEqual([0, 0]);
    const [fromB, fromC] = await Promise.all([recoverHolds(b, later), recoverHolds(c, later)]);
    const settled = [...fromB, ...fromC].filter((r) => !r.duplicate).map((r) => r.entry.requestId);
    expect(settled.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `s${i}`).sort());
    const entries = await b.recentEntries(100);
    expect(entries).toHaveLength(20);
    expect(entries.reduce((sum, e) => sum + e.outputTokens, 0)).toBe(Array.from({ length: 20 }, (_, i) => 200 + i).reduce((x, y) => x + y, 0));
    expect(entries.every((e) => e.source === 'recovered' && e.outcome === 'interrupted' && e.at === later)).toBe(true);
    expect(await b.listHolds()).toEqual([]);
    for (const row of await b.counterAudit()) expect(row.stored).toEqual(row.ledger);
  });

  it('a live instance’s hold with a pending charge whose request stopped renewing it expires as before', async () => {
    const a = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'a' });
    const { subject } = await userWithKey(a, 'alice');
    await a.heartbeat(T0);
    await a.reserve({ holdId: 'stuck', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL, pending });
    await a.heartbeat(T0 + TTL);
    expect(await a.expireHolds(T0 + TTL)).toBe(1);
    expect(await a.orphanedHolds(T0 + TTL)).toEqual([]);
  });

  it('an orphan whose recovery could not be written is handed out again a minute later, to its claimer or, once it died, to another', async () => {
    const timeout = { instanceTimeoutMs: 15_000 };
    const dead = await db.open({ defaultBudgets: [userTokens(1_000)], instanceId: 'dead', ...timeout });
    const { subject } = await userWithKey(dead, 'alice');
    await dead.heartbeat(T0);
    await dead.reserve({ holdId: 'story', subject, quote: { tokens: 100, micros: 0 }, now: T0, ttlMs: TTL, pending });
    const b = await db.open({ instanceId: 'b', ...timeout });
    const at = T0 + 20_000;
    await b.heartbeat(at);
    expect((await b.orphanedHolds(at)).map((o) => o.hold.id)).toEqual(['story']);
    // Its settle never happened. Not again at once, nor is it expired while b lives...
    expect(await b.orphanedHolds(at + 1_000)).toEqual([]);
    await b.heartbeat(at + TTL);
    expect(await b.expireHolds(at + TTL)).toBe(0);
    // ...but a minute on it is handed out again.
    expect((await b.orphanedHolds(at + 60_000)).map((o) => o.hold.id)).toEqual(['story']);
    // b dies too: c takes it over.
    const c = await db.open({ instanceId: 'c', ...timeout });
    await c.heartbeat(at + TTL + 20_000);
    const [orphan] = await c.orphanedHolds(at + TTL + 20_000);
    expect(orphan).toMatchObject({ hold: { id: 'story', subject }, pending, deliveredTokens: 0, updatedAt: T0 });
  });

  it('a key’s own states (GET /quota, one statement once the key was seen) follow what other instances change', async () => {
    const a = await db.open({ defaultBudgets: [userTokens(10_000)], instanceId: 'a' });
    const b = await db.open({ defaultBudgets: [userTokens(10_000)], instanceId: 'b' });
    const { secret, subject } = await userWithKey(a, 'alice', 'team');
    await a.createProject({ id: 'other', name: 'Other' }, T0);
    const hash = hashSecret(secret);
    const read = async () => {
      const found = await a.keyStates(hash, T0);
      return found && { project: found.identity.user.projectId, budgets: found.states.map((s) => [s.budget.key, s.usage.usedTokens, s.usage.reservedTokens]) };
    };
    expect(await read()).toEqual({ project: 'team', budgets: [['user:alice|month', 0, 0]] });
    // Another instance's settle and hold: read at once (no cache holds usage).
    await b.reserve({ holdId: 'r1', subject, quote: { tokens: 300, micros: 0 }, now: T0, ttlMs: TTL });
    await b.settle({ holdId: 'r1', subject, usage: usage(300), now: T0 });
    await b.reserve({ holdId: 'r2', subject, quote: { tokens: 50, micros: 0 }, now: T0, ttlMs: TTL });
    expect(await read()).toEqual({ project: 'team', budgets: [['user:alice|month', 300, 50]] });
    // Another instance's new budget of the key's project: a's resolved budgets are stale, and read
    // again. (It counts the usage before it; the hold made before it joins it only when extended.)
    await b.putBudget({ scope: { kind: 'project', id: 'team' }, window: { kind: 'day', timeZone: 'UTC' }, limitTokens: 1_000, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null }, T0);
    expect(await read()).toEqual({ project: 'team', budgets: [['user:alice|month', 300, 50], ['project:team|day', 300, 0]] });
    // The user moved to another project (as an admin would, through any instance): its scopes changed.
    const sql = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${db.schema}` });
    await sql.connect();
    await sql.query(`UPDATE users SET project_id = 'other' WHERE id = 'alice'`);
    await sql.end();
    expect(await read()).toEqual({ project: 'other', budgets: [['user:alice|month', 300, 50]] });
    // Revoked through another instance: unknown here from the next read on.
    await b.revokeKey(subject.keyId, T0);
    expect(await read()).toBeNull();
  });

  it('reads back BIGINT money as numbers, and refuses one it could not represent exactly', async () => {
    const a = await db.open({ instanceId: 'a' });
    const { subject } = await userWithKey(a, 'alice');
    const big = 2 ** 52; // micro-dollars: far beyond any real bill, still exact
    const settled = await a.settle({ holdId: 'x', subject, usage: { ...usage(1), costMicros: big }, now: T0 });
    expect(settled.entry.costMicros).toBe(big);
    await a.settle({ holdId: 'y', subject, usage: { ...usage(1), costMicros: big }, now: T0 });
    // The sum no longer fits in a double exactly: an error, never a rounded total.
    await expect(a.usageReport({ groupBy: 'user', from: 0, to: T0 + 1, timeZone: 'UTC' })).rejects.toThrow(/not a safe integer/);
  });
});

describe('PostgreSQL briefly unreachable', () => {
  let forwarder: TcpForwarder | undefined;
  afterEach(async () => {
    await forwarder?.close();
    forwarder = undefined;
  });

  async function throughForwarder() {
    const target = new URL(process.env.LQ_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test');
    forwarder = await startTcpForwarder(target.hostname, Number(target.port || 5432));
    const url = new URL(target);
    url.port = String(forwarder.port);
    return db.open({ defaultBudgets: [userTokens(100_000)], url: url.toString(), connectTimeoutMs: 300 });
  }

  it('retries, then refuses with StoreUnavailableError; works again once the database is back', async () => {
    const store = await throughForwarder();
    const { subject } = await userWithKey(store, 'alice');
    await forwarder?.cut();
    const started = Date.now();
    const refused = await store.reserve({ holdId: 'r1', subject, quote: { tokens: 10, micros: 0 }, now: T0, ttlMs: TTL }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500); // 100 + 400 ms of retries
    await expect(store.ping()).rejects.toThrow();

    await forwarder?.restore();
    expect((await store.reserve({ holdId: 'r2', subject, quote: { tokens: 10, micros: 0 }, now: T0, ttlMs: TTL })).ok).toBe(true);
    await store.close();
  });

  it('the proxy answers 503 in OpenAI’s shape and /health 503, and nothing is sent upstream; failOpen admits instead', async () => {
    const store = await throughForwarder();
    const { secret } = await userWithKey(store, 'alice');
    const config = testConfig({ upstreams: [{ name: 'nowhere', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-x', models: ['*'] }] });
    const upstreams = Upstreams.fromConfig(config);
    const app = (s: Store) => createApp({ store: s, config, clock: new ManualClock(T0), adminTokenHash: hashSecret(ADMIN_TOKEN), upstreams });
    const ask = (a: ReturnType<typeof app>) =>
      a.request('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
    const closed = app(store);
    const open = app(failOpen(store, () => undefined));
    // failOpen remembers keys it has seen while the database was up.
    expect((await open.request('/quota', { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    await forwarder?.cut();
    const refused = await ask(closed);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toEqual({
      error: { message: expect.stringContaining('cannot reach its database') as string, type: 'server_error', param: null, code: 'store_unavailable' },
    });
    const health = await closed.request('/health');
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ ok: false, store: 'postgres' });

    // failOpen: the request goes through unmetered (here to an upstream that is not there: 502, not 503).
    const forwarded = await ask(open);
    expect(forwarded.status).toBe(502);
    await forwarder?.restore();
    expect((await open.request('/health')).status).toBe(200);
    expect(await store.listHolds()).toEqual([]);
    await upstreams.close();
    await store.close();
  });

  it('failOpen lets a shared service key through too, for end users it has seen and for new ones', async () => {
    const store = await throughForwarder();
    await store.createUser({ id: 'lobechat', name: 'LobeChat', projectId: null }, T0);
    const { secret, prefix } = newUserKey();
    await store.createKey({ id: 'key_lobechat', userId: 'lobechat', name: 'server', service: true, secretHash: hashSecret(secret), prefix }, T0);
    const config = testConfig({ upstreams: [{ name: 'nowhere', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-x', models: ['*'] }] });
    const upstreams = Upstreams.fromConfig(config);
    const logged: string[] = [];
    const open = createApp({ store: failOpen(store, (m) => logged.push(m)), config, clock: new ManualClock(T0), adminTokenHash: hashSecret(ADMIN_TOKEN), upstreams });
    const ask = (user: string) =>
      open.request('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user }),
      });
    // While the database is up: the key and a first user are seen (and the user created).
    expect((await ask('user_2seen')).status).toBe(502);
    await forwarder?.cut();
    // Down: both the remembered user and one never seen go through unmetered (502: no upstream), not 503.
    expect((await ask('user_2seen')).status).toBe(502);
    expect((await ask('user_2new')).status).toBe(502);
    expect(logged.filter((m) => /admitting .* unmetered/.test(m)).join('\n')).toMatch(/user:user_2seen[\s\S]*user:user_2new/);
    await forwarder?.restore();
    expect((await store.listUsers()).map((u) => u.id).sort()).toEqual(['lobechat', 'user_2seen']);
    await upstreams.close();
    await store.close();
  });
});
