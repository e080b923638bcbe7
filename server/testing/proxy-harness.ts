import OpenAI from 'openai';
import type { Config } from '../config/load.js';
import type { DefaultBudget } from '../config/schema.js';
import type { TokenCounter } from '../proxy/token-count.js';
import type { AlertOptions } from '../alerts/alert-planning.js';
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from './fake-openai.js';
import { serveInFrontOf, type ServerInFront } from './harness.js';

export interface ProxyHarness extends ServerInFront {
  fake: FakeOpenAI;
  /** The official OpenAI SDK pointed at lobe-quota's /v1 with a key; counts the HTTP calls it makes. */
  client(key: string, options?: { maxRetries?: number; timeout?: number }): OpenAI & { calls: () => number };
}

/**
 * A real lobe-quota server on a free port in front of the fake OpenAI upstream, with one user
 * (alice, in project "research") and her key.
 */
export async function startProxy(
  options: { defaultBudgets?: DefaultBudget[]; config?: Partial<Config>; fake?: FakeOpenAIOptions; tokens?: TokenCounter; responseCacheDir?: string; alerts?: AlertOptions } = {},
): Promise<ProxyHarness> {
  const fake = await startFakeOpenAI(options.fake);
  const { defaultBudgets, config, tokens } = options;
  const base = await serveInFrontOf(fake, {
    upstreams: [{ name: 'fake', baseUrl: fake.baseUrl, apiKey: 'sk-upstream-secret', models: ['*'] }],
    defaultBudgets,
    config,
    tokens,
    responseCacheDir: options.responseCacheDir,
    alerts: options.alerts,
  });
  return {
    ...base,
    fake,
    client(key, { maxRetries = 0, timeout = 10_000 } = {}) {
      let calls = 0;
      const client = new OpenAI({
        baseURL: `${base.url}/v1`,
        apiKey: key,
        maxRetries,
        timeout,
        fetch: (input, init) => {
          calls++;
          return fetch(input, init);
        },
      });
      return Object.assign(client, { calls: () => calls });
    },
  };
}

/**
 * A service key's client, as a LobeChat server with one shared key holds it: a user for the server
 * (`lobechat`) and a service key of theirs, through the admin API.
 */
export async function serviceClient(p: ProxyHarness): Promise<OpenAI & { calls: () => number }> {
  await p.svc.admin('POST', '/admin/users', { id: 'lobechat' });
  const created = await p.svc.admin('POST', '/admin/keys', { userId: 'lobechat', service: true });
  return p.client(((await created.json()) as { key: string }).key);
}
