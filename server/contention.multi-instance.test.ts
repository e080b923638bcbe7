import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { hashSecret } from './auth/secrets.js';
import { ManualClock } from './clock.js';
import { Upstreams } from './proxy/upstreams.js';
import type { Scope } from './quota/scope.js';
import { monthlyTokens } from './store/testing/store-fixtures.js';
import { postgresTestSchema } from './store/testing/store-kinds.js';
import { countingAsTheFakes } from './testing/counting-as-the-fakes.js';
import { startFakeOpenAI, type FakeOpenAI } from './testing/fake-openai.js';
import { ADMIN_TOKEN, listen, T0, testConfig, userWithKey } from './testing/harness.js';

/**
 * The store-level fight (store/postgres/contention.multi-instance.test.ts) through the whole proxy:
 * two lobe-quota apps, each on its own PostgresStore (pool and instance id) of one schema, each
 * serving 64 requests of the official OpenAI SDK at once over HTTP, against one project budget.
 *
 * Every request asks for the least DESIGN admits: its prompt and max_tokens 1. The fake upstream
 * answers one token and reports the prompt as lobe-quota counts it, so each request is charged
 * exactly its hold, and the limit (`fits` holds plus one more prompt) leaves the next request short
 * by its one output token.
 */

const PER_INSTANCE = 64;
const USERS = 8;
const PROJECT = 'arena';
const MODEL = 'gpt-4o-mini';
const messages = [{ role: 'user' as const, content: 'one word, please' }];

const db = postgresTestSchema();
const tokens = countingAsTheFakes();
const PROMPT = tokens.countChatPrompt(MODEL, { model: MODEL, messages, max_tokens: 1 });
const NEED = PROMPT + 1;

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

describe('two lobe-quota apps on one PostgreSQL, over HTTP with the OpenAI SDK', () => {
  it.each([
    { fits: 64, spare: PROMPT },
    { fits: 101, spare: PROMPT },
    { fits: 17, spare: PROMPT },
  ])(
    '128 chat completions at once ($fits fit): exactly those served, the rest refused with 429 insufficient_quota, every one charged, no holds left',
    async ({ fits, spare }) => {
      await db.reset();
      const limit = fits * NEED + spare;
      const fake: FakeOpenAI = await startFakeOpenAI({ defaultBehaviour: { kind: 'reply', outputTokens: 1, usage: { prompt_tokens: PROMPT } } });
      closing.push(() => fake.close());
      const config = testConfig({
        defaultBudgets: [monthlyTokens('project', limit), monthlyTokens('global', 1_000_000), monthlyTokens('user', 100_000)],
        upstreams: [{ name: 'fake', baseUrl: fake.baseUrl, apiKey: 'sk-upstream', models: ['*'] }],
      });
      const instance = async (instanceId: string) => {
        const store = await db.open({ defaultBudgets: config.defaultBudgets, instanceId });
        const upstreams = Upstreams.fromConfig(config);
        const app = createApp({ store, config, clock: new ManualClock(T0), adminTokenHash: hashSecret(ADMIN_TOKEN), upstreams, tokens });
        const server = await listen(app.fetch);
        closing.push(async () => {
          await server.close();
          await upstreams.close();
        });
        return { store, url: server.url };
      };
      const [a, b] = await Promise.all([instance('a'), instance('b')]);
      const users: Array<Awaited<ReturnType<typeof userWithKey>>> = [];
      for (let u = 0; u < USERS; u++) users.push(await userWithKey(a.store, `user${u}`, PROJECT));

      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 2 * PER_INSTANCE }, async (_, i) => {
          const client = new OpenAI({ baseURL: `${(i % 2 === 0 ? a : b).url}/v1`, apiKey: users[i % USERS]!.secret, maxRetries: 0, timeout: 20_000 });
          try {
            const reply = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 1 });
            expect(reply.usage).toMatchObject({ prompt_tokens: PROMPT, completion_tokens: 1 });
            return 'served';
          } catch (error) {
            if (error instanceof OpenAI.RateLimitError && error.code === 'insufficient_quota' && error.message.includes(`project:${PROJECT}`)) return 'refused';
            throw error;
          }
        }),
      );
      console.info(`${fits} fit: ${outcomes.filter((o) => o === 'served').length} served over HTTP in ${Date.now() - started} ms`);
      expect(outcomes.filter((o) => o === 'served')).toHaveLength(fits);
      expect(fake.requests).toHaveLength(fits);

      // Every served request is in the ledger and the counters, at exactly what it held.
      const entries = await b.store.recentEntries(1_000);
      expect(entries).toHaveLength(fits);
      expect(entries.every((e) => e.inputTokens === PROMPT && e.outputTokens === 1)).toBe(true);
      const scopes: Scope[] = [{ kind: 'project', id: PROJECT }, { kind: 'global' }];
      const states = await b.store.budgetStates(scopes, T0);
      expect(states.map((s) => [s.budget.scope.kind, s.usage.usedTokens, s.usage.reservedTokens])).toEqual([
        ['project', fits * NEED, 0],
        ['global', fits * NEED, 0],
      ]);
      expect(limit - fits * NEED).toBe(spare);
      expect(await a.store.listHolds()).toEqual([]);
      for (const row of await a.store.counterAudit()) expect(row.stored, row.budgetKey).toEqual(row.ledger);
    },
    30_000,
  );
});
