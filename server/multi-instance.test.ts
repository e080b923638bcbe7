import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from './alerts/channels/receiver.test-util.js';
import { quoteIdent } from './store/postgres/pg-pool.js';
import { TEST_DATABASE_URL, testSchemaName } from './store/testing/store-kinds.js';
import { streamStories } from './testing/concurrent-streams.js';
import { startFakeOpenAI, type FakeOpenAI } from './testing/fake-openai.js';
import { eventually } from './testing/harness.js';
import { startServerProcess, type ServerProcess } from './testing/server-process.js';

/**
 * Two real server processes (as `npm start` runs them) on one PostgreSQL schema, behind no load
 * balancer: clients alternate between them. What holds for one instance must hold for both
 * together: no overspend, alerts once in total, and a killed instance's holds released by the other.
 */

const ADMIN = 'multi-instance-admin-token-0123456789';
const LIMIT = 20_000;

const schema = testSchemaName();
const running: ChildProcess[] = [];
let dir: string;
let fake: FakeOpenAI;
let hooks: Receiver;
let a: ServerProcess;
let b: ServerProcess;

const admin = (base: string, p: string, init: RequestInit = {}) =>
  fetch(`${base}${p}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });

async function userKey(base: string, userId: string): Promise<string> {
  expect((await admin(base, '/admin/users', { method: 'POST', body: JSON.stringify({ id: userId, name: userId }) })).status).toBe(201);
  return ((await (await admin(base, '/admin/keys', { method: 'POST', body: JSON.stringify({ userId }) })).json()) as { key: string }).key;
}

const holdsOf = async (base: string, userId: string) =>
  ((await (await admin(base, '/admin/holds')).json()) as { holds: Array<{ id: string; userId: string }> }).holds.filter((h) => h.userId === userId);

const client = (base: string, key: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 });

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-multi-'));
  fake = await startFakeOpenAI();
  hooks = await startReceiver({ status: 200, body: 'ok' });
  const config = path.join(dir, 'lobe-quota.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      // A beat a second: an instance silent for 3 s is gone. Holds themselves would last 10 minutes.
      database: { schema, heartbeatSeconds: 1 },
      holds: { ttlSeconds: 600 },
      defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: LIMIT }],
      alerts: { channels: [{ type: 'webhook', url: hooks.url('/hook') }], projection: false, spike: { enabled: false } },
    }),
  );
  const env = {
    DATABASE_URL: TEST_DATABASE_URL,
    ADMIN_TOKEN: ADMIN,
    OPENAI_BASE_URL: fake.baseUrl,
    OPENAI_API_KEY: 'sk-upstream',
    LOBE_QUOTA_CONFIG: config,
    DATA_DIR: dir,
  };
  [a, b] = await Promise.all([startServerProcess(env, running, 30_000), startServerProcess(env, running, 30_000)]);
}, 60_000);

afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await fake?.close();
  await hooks?.close();
  const db = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('two instances on one PostgreSQL', () => {
  it('60 concurrent streams split across both share a 20,000-token budget: never over, at least 18,000 served, alerts sent once in total', async () => {
    expect(a.output()).toContain(`schema ${schema}`);
    expect(await (await fetch(`${a.baseUrl}/health`)).json()).toEqual({ ok: true, store: 'postgres' });
    const key = await userKey(a.baseUrl, 'alice');
    const outcomes = await streamStories(fake, (i) => client(i % 2 === 0 ? a.baseUrl : b.baseUrl, key), 60, 500);
    const report = (await (await admin(b.baseUrl, '/admin/usage?by=user')).json()) as { totals: { totalTokens: number; outputTokens: number; requests: number } };
    expect(report.totals.totalTokens).toBeLessThanOrEqual(LIMIT);
    expect(report.totals.totalTokens).toBeGreaterThanOrEqual(18_000);
    expect(report.totals.outputTokens).toBe(outcomes.reduce((sum, o) => sum + o.pieces, 0));
    expect(outcomes.filter((o) => o.finish === 'stop').length).toBeGreaterThan(0);
    // Both instances served some of them.
    expect(outcomes.filter((o, i) => i % 2 === 0 && o.pieces > 0).length).toBeGreaterThan(0);
    expect(outcomes.filter((o, i) => i % 2 === 1 && o.pieces > 0).length).toBeGreaterThan(0);
    expect(await holdsOf(a.baseUrl, 'alice')).toEqual([]);
    const quota = (await (await fetch(`${a.baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } })).json()) as { usage: number };
    expect(quota.usage).toBe(report.totals.totalTokens);

    // Both senders poll the one outbox; every alert reaches the webhook exactly once.
    const fired = async () => ((await (await admin(a.baseUrl, '/admin/alerts?scope=user:alice')).json()) as { alerts: Array<{ id: string; threshold: number | null }> }).alerts;
    const alerts = await fired();
    expect(alerts.map((x) => x.threshold).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual(expect.arrayContaining([50, 80, 90]));
    // A delivery is only claimed while pending, and a claim holds off the other sender: once none
    // is pending, nothing more can be sent.
    const pending = async () => ((await (await admin(a.baseUrl, '/admin/alerts?state=pending')).json()) as { alerts: unknown[] }).alerts.length;
    await eventually(async () => (await pending()) === 0 && hooks.requests.length >= alerts.length, 20_000, 'every alert to be delivered');
    const delivered = hooks.requests.map((r) => (JSON.parse(r.rawBody.toString()) as { id: string }).id).sort();
    expect(delivered).toEqual(alerts.map((x) => x.id).sort());
  }, 60_000);

  it('one instance killed with SIGKILL mid-load: the other keeps serving, and the dead one’s holds are released', async () => {
    const key = await userKey(b.baseUrl, 'bob');
    fake.enqueue(...Array.from({ length: 12 }, () => ({ kind: 'reply' as const, outputTokens: 150, chunkDelayMs: 20 })));
    const streams = Array.from({ length: 12 }, async (_, i) => {
      const onA = i % 2 === 0;
      try {
        const stream = await client(onA ? a.baseUrl : b.baseUrl, key).chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `story ${i}` }],
          stream: true,
        });
        let finish: string | null = null;
        for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
        return { onA, finish };
      } catch {
        return { onA, finish: 'broken' };
      }
    });
    // All twelve are in flight (each holds its prompt and a lease), then A dies without a word.
    await eventually(async () => (await holdsOf(b.baseUrl, 'bob')).length === 12, 10_000, 'twelve holds');
    a.child.kill('SIGKILL');
    const killedAt = Date.now();

    // B serves a new request while its own streams go on.
    const reply = await client(b.baseUrl, key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }] });
    expect(reply.choices[0]?.message.content).toBeTruthy();
    const results = await Promise.all(streams);
    expect(results.filter((r) => !r.onA).map((r) => r.finish)).toEqual(Array(6).fill('stop'));
    expect(results.filter((r) => r.onA).every((r) => r.finish === 'broken')).toBe(true);

    // A's six holds were never settled or released; B releases them once A has been silent for 3 s,
    // long before their own 10-minute expiry.
    await eventually(async () => (await holdsOf(b.baseUrl, 'bob')).length === 0, 15_000, 'the dead instance’s holds to be released');
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    const quota = (await (await fetch(`${b.baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      budgets: Array<{ reservedTokens: number; usedTokens: number }>;
    };
    expect(quota.budgets[0]).toMatchObject({ reservedTokens: 0 });
    expect(quota.budgets[0]?.usedTokens).toBeGreaterThan(0);
    expect((await fetch(`${b.baseUrl}/health`)).status).toBe(200);
  }, 60_000);
});
