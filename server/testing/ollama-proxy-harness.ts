import { Ollama } from 'ollama';
import type { Config } from '../config/load.js';
import type { DefaultBudget } from '../config/schema.js';
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from './fake-ollama.js';
import type { TokenCounter } from '../proxy/token-count.js';
import { countingAsTheFakes } from './counting-as-the-fakes.js';
import { serveInFrontOf, type ServerInFront } from './harness.js';

export interface OllamaProxyHarness extends ServerInFront {
  fake: FakeOllama;
  /**
   * The `ollama` npm package pointed at lobe-quota: `header` gives it `<url>/ollama` and
   * `Authorization: Bearer <key>`; `url` the key-scoped base URL `<url>/ollama/k/<key>` and no
   * headers, as LobeChat's Ollama provider uses it. Counts the HTTP calls it makes.
   */
  client(key: string, via?: 'header' | 'url'): Ollama & { calls: () => number };
}

/**
 * A real lobe-quota server on a free port in front of a fake Ollama (upstream `local-ollama`,
 * `api: "ollama"`, serving `models`, no key of its own unless given), with one user (alice, in
 * project "research") and her key. Its token counter counts as the fake does unless `tokens` is given.
 */
export async function startOllamaProxy(
  options: { defaultBudgets?: DefaultBudget[]; config?: Partial<Config>; fake?: FakeOllamaOptions; models?: string[]; upstreamKey?: string; tokens?: TokenCounter } = {},
): Promise<OllamaProxyHarness> {
  const fake = await startFakeOllama(options.fake);
  const base = await serveInFrontOf(fake, {
    upstreams: [{ name: 'local-ollama', api: 'ollama', baseUrl: fake.baseUrl, apiKey: options.upstreamKey, models: options.models ?? ['*'] }],
    defaultBudgets: options.defaultBudgets,
    config: options.config,
    tokens: options.tokens ?? countingAsTheFakes(),
  });
  return {
    ...base,
    fake,
    client(key, via = 'header') {
      let calls = 0;
      const counted: typeof fetch = (input, init) => {
        calls++;
        return fetch(input, init);
      };
      const client =
        via === 'header'
          ? new Ollama({ host: `${base.url}/ollama`, headers: { Authorization: `Bearer ${key}` }, fetch: counted })
          : new Ollama({ host: `${base.url}/ollama/k/${key}`, fetch: counted });
      return Object.assign(client, { calls: () => calls });
    },
  };
}
