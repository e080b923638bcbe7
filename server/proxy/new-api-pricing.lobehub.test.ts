import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../testing/fake-openai.js';
import { listen, testService, userWithKey, type TestService } from '../testing/harness.js';
import { bundleNewApiProvider, lobehubSourceAvailable, type LobeModelCard, type NewApiProvider } from '../testing/lobehub-newapi/bundle-newapi.js';
import { createPriceBook } from './pricing.js';

/**
 * LobeChat's own New API provider (LobeHub 2.1.26, bundled from its tarball, nothing copied) lists
 * the models of a real lobe-quota and reads `/api/pricing` the way it does in production: the
 * prices its model list shows are ours, to the last bit.
 */

/** What the OpenAI-format upstream lists; Claude and Gemini reach LobeChat's list through it. */
const LISTED = ['claude-sonnet-4-5-20250929', 'claude-haiku-4-5', 'gemini-2.5-pro', 'gemini-2.5-flash', 'gpt-4o-mini', 'gpt-4o-2024-08-06', 'deepseek-chat'];

describe.skipIf(!lobehubSourceAvailable())('LobeChat’s New API provider reads our prices from /api/pricing', () => {
  let provider: NewApiProvider;
  let fake: FakeOpenAI;
  let svc: TestService;
  let server: { url: string; close: () => Promise<void> };
  let key: string;
  let bundleDir: string;

  beforeAll(async () => {
    bundleDir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-newapi-'));
    provider = await bundleNewApiProvider(bundleDir);
    fake = await startFakeOpenAI({ models: LISTED });
    svc = testService({
      config: {
        upstreams: [
          { name: 'anthropic', api: 'anthropic', baseUrl: 'https://api.anthropic.com', apiKey: 'sk-ant', models: ['claude-*'] },
          { name: 'google', api: 'gemini', baseUrl: 'https://generativelanguage.googleapis.com', apiKey: 'g', models: ['gemini-*'] },
          { name: 'openai', baseUrl: fake.baseUrl, apiKey: 'sk-upstream', models: ['*'] },
        ],
      },
    });
    server = await listen(svc.app.fetch);
    key = (await userWithKey(svc.store, 'alice')).secret;
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await svc?.upstreams.close();
    await fake?.close();
    await svc?.store.close();
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  });

  it('shows every priced model at our input and output prices; an unpriced one without a price', async () => {
    // As LobeChat's server calls it: its OpenAI client at `${base}/v1` with the user's lobe-quota key.
    const client = new provider.OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const cards = await provider.params.models({ client });
    const rates = (card: LobeModelCard | undefined) =>
      Object.fromEntries((card?.pricing?.units ?? []).map((u) => [u.name, [u.rate, u.strategy, u.unit]]));

    const prices = createPriceBook();
    for (const id of LISTED.filter((m) => m !== 'deepseek-chat')) {
      const price = prices.priceOf(id);
      expect(price, id).not.toBeNull();
      expect(rates(cards.find((c) => c.id === id)), id).toEqual({
        textInput: [(price?.inputMicrosPerMillion ?? 0) / 1e6, 'fixed', 'millionTokens'],
        textOutput: [(price?.outputMicrosPerMillion ?? 0) / 1e6, 'fixed', 'millionTokens'],
      });
    }
    // The figures a person sees in LobeChat's model list, for three formats.
    expect(rates(cards.find((c) => c.id === 'claude-sonnet-4-5-20250929'))).toMatchObject({ textInput: [3, 'fixed', 'millionTokens'], textOutput: [15, 'fixed', 'millionTokens'] });
    expect(rates(cards.find((c) => c.id === 'gemini-2.5-pro'))).toMatchObject({ textInput: [1.25, 'fixed', 'millionTokens'], textOutput: [10, 'fixed', 'millionTokens'] });
    expect(rates(cards.find((c) => c.id === 'gpt-4o-mini'))).toMatchObject({ textInput: [0.15, 'fixed', 'millionTokens'], textOutput: [0.6, 'fixed', 'millionTokens'] });

    const unpriced = cards.find((c) => c.id === 'deepseek-chat');
    expect(unpriced).toBeDefined();
    expect(unpriced?.pricing).toBeUndefined();
  });
});
