import Anthropic from '@anthropic-ai/sdk';
import type { Config } from '../config/load.js';
import type { DefaultBudget } from '../config/schema.js';
import type { TokenCounter } from '../proxy/token-count.js';
import { startFakeAnthropic, type FakeAnthropic, type FakeAnthropicOptions } from './fake-anthropic.js';
import { serveInFrontOf, type ServerInFront } from './harness.js';

/** The upstream's own key: the only one the fake accepts, and one no client ever holds. */
export const ANTHROPIC_UPSTREAM_KEY = 'sk-ant-upstream-secret';

/** `url` is lobe-quota's base URL as ANTHROPIC_PROXY_URL / the SDK's `baseURL` takes it (no `/v1`). */
export interface AnthropicProxy extends ServerInFront {
  fake: FakeAnthropic;
  /** The official Anthropic SDK pointed at lobe-quota with a key; counts the HTTP calls it makes. */
  client(key: string, options?: { maxRetries?: number }): Anthropic & { calls: () => number };
}

/**
 * A real lobe-quota server in front of the fake Anthropic upstream (`api: "anthropic"`, serving
 * `claude-*`), with one user (alice, in project "research") and her key.
 */
export async function startAnthropicProxy(
  options: { defaultBudgets?: DefaultBudget[]; config?: Partial<Config>; fake?: FakeAnthropicOptions; tokens?: TokenCounter; responseCacheDir?: string } = {},
): Promise<AnthropicProxy> {
  const fake = await startFakeAnthropic({ apiKey: ANTHROPIC_UPSTREAM_KEY, ...options.fake });
  const { defaultBudgets, config, tokens } = options;
  const base = await serveInFrontOf(fake, {
    upstreams: [{ name: 'anthropic', api: 'anthropic', baseUrl: fake.baseUrl, apiKey: ANTHROPIC_UPSTREAM_KEY, models: ['claude-*'] }],
    defaultBudgets,
    config,
    tokens,
    responseCacheDir: options.responseCacheDir,
  });
  return {
    ...base,
    fake,
    client(key, { maxRetries = 0 } = {}) {
      let calls = 0;
      const client = new Anthropic({
        baseURL: base.url,
        apiKey: key,
        maxRetries,
        timeout: 10_000,
        fetch: (input: string | URL | Request, init?: RequestInit) => {
          calls++;
          return fetch(input, init);
        },
      });
      return Object.assign(client, { calls: () => calls });
    },
  };
}
