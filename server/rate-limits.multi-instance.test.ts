import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from './store/postgres/pg-pool.js';
import { TEST_DATABASE_URL, testSchemaName } from './store/testing/store-kinds.js';
import { startFakeOpenAI, type FakeOpenAI } from './testing/fake-openai.js';
import { startServerProcess, type ServerProcess } from './testing/server-process.js';

/**
 * Two real server processes on one PostgreSQL schema, clients alternating between them: a rate
 * limit is counted in the database under the admission's locks, so both together keep it, not each.
 */

const ADMIN = 'rate-limits-admin-token-0123456789';
const schema = testSchemaName();
const running: ChildProcess[] = [];
let dir: string;
let fake: FakeOpenAI;
let a: ServerProcess;
let b: ServerProcess;

const admin = (base: string, p: string, init: RequestInit = {}) =>
  fetch(`${base}${p}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });

async function userKey(base: string, userId: string): Promise<string> {
  expect((await admin(base, '/admin/users', { method: 'POST', body: JSON.stringify({ id: userId, name: userId }) })).status).toBe(201);
  return ((await (await admin(base, '/admin/keys', { method: 'POST', body: JSON.stringify({ userId }) })).json()) as { key: string }).key;
}

/** `count` requests at once, alternating between the instances; how many each way ended. */
async function burst(key: string, count: number): Promise<{ served: number; limited: number }> {
  const outcomes = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const client = new OpenAI({ baseURL: `${(i % 2 === 0 ? a : b).baseUrl}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 });
      try {
        await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] });
        return 'served';
      } catch (error) {
        if (error instanceof OpenAI.RateLimitError && error.code === 'rate_limit_exceeded') return 'limited';
        throw error;
      }
    }),
  );
  return { served: outcomes.filter((o) => o === 'served').length, limited: outcomes.filter((o) => o === 'limited').length };
}

/** The windows are real UTC minutes here: start a burst well inside one. */
async function awayFromMinuteEnd(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-rates-'));
  fake = await startFakeOpenAI();
  const config = path.join(dir, 'lobe-quota.config.json');
  writeFileSync(config, JSON.stringify({ database: { schema }, rateLimits: { user: { requestsPerMinute: 10 } } }));
  const env = { DATABASE_URL: TEST_DATABASE_URL, ADMIN_TOKEN: ADMIN, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-upstream', LOBE_QUOTA_CONFIG: config, DATA_DIR: dir };
  [a, b] = await Promise.all([startServerProcess(env, running, 60_000), startServerProcess(env, running, 60_000)]);
}, 90_000);

afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await fake?.close();
  const db = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('rate limits on two instances of one PostgreSQL', () => {
  it('30 requests at once from both instances under 10 requests a minute: exactly 10 served, 20 refused', async () => {
    const key = await userKey(a.baseUrl, 'alice');
    await awayFromMinuteEnd();
    const before = fake.requests.length;
    expect(await burst(key, 30)).toEqual({ served: 10, limited: 20 });
    expect(fake.requests.length - before).toBe(10);
  }, 60_000);

  it('a subject’s limit set on one instance holds on the other from its next request', async () => {
    const key = await userKey(a.baseUrl, 'bob');
    expect((await admin(a.baseUrl, '/admin/rate-limits', { method: 'PUT', body: JSON.stringify({ scope: 'user:bob', requestsPerMinute: 3 }) })).status).toBe(201);
    await awayFromMinuteEnd();
    expect(await burst(key, 8)).toEqual({ served: 3, limited: 5 });
  }, 60_000);
});
