// `npm run bench:path`: the proxy's own work for one whole answer, in process, without sockets or
// an upstream: admission (payer, routing, prompt already counted, the store's reserve), a turn of
// the event loop (in which the hold is copied for recovery), then the answer finished as the route
// finishes it (its usage read, the settle and its group commit, the quota headers, the answer
// handed to a response that only records it). It isolates lobe-quota's code from Node's http and
// undici, whose share of `bench:proxy` moves with the machine's load.
// Compare two builds by running this in each worktree in turn (CPU µs a request, median of rounds).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Context } from 'hono';
import type { DefaultBudget } from '../server/config/schema.js';
import { systemClock } from '../server/clock.js';
import { loadConfig } from '../server/config/load.js';
import { Metrics } from '../server/metrics/metrics.js';
import { admitRequest, type AdmissionInput, type ProxyServices } from '../server/proxy/admit-request.js';
import { openAIChat } from '../server/proxy/dialects/openai-chat.js';
import { createPriceBook } from '../server/proxy/pricing.js';
import { RateLimiter } from '../server/proxy/rate-limiter.js';
import { createTokenCounter } from '../server/proxy/token-count.js';
import { finishWholeAnswer } from '../server/proxy/upstream-answer.js';
import type { UpstreamResponse } from '../server/proxy/upstream-call.js';
import { Upstreams } from '../server/proxy/upstreams.js';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';
import type { KeyIdentity } from '../server/store/types.js';
import { median } from './figures.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '3200' },
    rounds: { type: 'string', default: '21' },
    concurrency: { type: 'string', default: '32' },
  },
});
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);

/** The budgets of `bench:proxy`: one user's tokens a month, everyone's dollars a month. */
const BUDGETS: DefaultBudget[] = [
  { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1e12, limitUsd: null, onLimit: 'reject' },
  { scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 1e9, onLimit: 'reject' },
];

/** An upstream answer of the size `bench:proxy`'s fake gives (200 pieces of text and OpenAI's usage). */
const ANSWER = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench0000000001',
    object: 'chat.completion',
    created: 1_765_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: ' the quota'.repeat(100), refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: 330,
      completion_tokens: 200,
      total_tokens: 530,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_bench0fake',
  }),
);
const UPSTREAM_HEADERS = { 'content-type': 'application/json', 'content-length': String(ANSWER.length), 'x-request-id': 'req_bench', 'openai-processing-ms': '1', date: 'Mon, 07 Dec 2026 12:00:00 GMT' };

/** What a Context reads of its request on the direct path (see node-listener.ts): no headers here. */
const REQUEST = { method: 'POST', url: 'http://localhost/v1/chat/completions', headers: { get: () => null } } as unknown as Request;

async function setUp(dir: string) {
  const loaded = loadConfig({ env: {}, cwd: dir });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  const config = { ...loaded.config, dataDir: dir, upstreams: [{ name: 'fake', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-bench', models: ['*'] }], defaultBudgets: BUDGETS };
  const store = SqliteStore.open({ file: path.join(dir, 'path.db'), defaultBudgets: BUDGETS, defaultThresholds: config.alertThresholds });
  await store.createUser({ id: 'bench', name: 'Bench', projectId: null }, Date.now());
  await store.createKey({ id: 'key_bench', userId: 'bench', name: 'bench', service: false, secretHash: 'h'.repeat(64), prefix: 'lq-bench' }, Date.now());
  const identity = (await store.findKeyByHash('h'.repeat(64))) as KeyIdentity;
  const prices = createPriceBook(config.prices);
  const upstreams = Upstreams.fromConfig(config);
  const services: ProxyServices = {
    store,
    clock: systemClock,
    config,
    upstreams,
    prices,
    tokens: createTokenCounter(),
    rateLimiter: new RateLimiter(config.rateLimits),
    metrics: new Metrics({ store, clock: systemClock, prices }),
  };
  const input: AdmissionInput = { model: 'gpt-4o-mini', api: 'openai', bodyBytes: 1_300, bodyUser: undefined, countPrompt: () => 330, wantOutput: 16_384, streaming: false, downgradable: true };
  const countOutput = services.tokens.outputCounter('gpt-4o-mini');

  /** One request: admitted, its answer finished and sent; throws if the answer lacks our headers. */
  const request = async (): Promise<void> => {
    let sent: Record<string, string> | undefined;
    const outgoing = {
      writeHead(_status: number, headers: Record<string, string>) {
        sent = headers;
        return outgoing;
      },
      end() {},
    };
    const c = new Context(REQUEST, { env: { outgoing }, path: '/v1/chat/completions' });
    const admission = await admitRequest(c, services, identity, input);
    if (!admission.ok) throw new Error('refused');
    // The upstream answers turns later: the store's next commit copies the hold for recovery
    // first (HoldJournal), as it does in production, and the settle deletes the copy again.
    await new Promise((resolve) => setImmediate(resolve));
    const response = { statusCode: 200, headers: UPSTREAM_HEADERS, body: Readable.from([ANSWER]) } as unknown as UpstreamResponse;
    await finishWholeAnswer(c, admission.admitted, response, openAIChat, countOutput);
    if (sent?.['x-quota-limit'] === undefined || sent['content-length'] === undefined) throw new Error('the answer went without its headers');
  };
  return {
    request,
    async close() {
      await upstreams.close();
      await store.close();
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-path-bench-'));
  const { request, close } = await setUp(dir);
  const round = async (): Promise<number> => {
    const start = process.cpuUsage();
    for (let sent = 0; sent < REQUESTS; sent += CONCURRENCY) await Promise.all(Array.from({ length: Math.min(CONCURRENCY, REQUESTS - sent) }, request));
    const used = process.cpuUsage(start);
    return (used.user + used.system) / REQUESTS;
  };
  // The first rounds warm up (JIT, the store's caches) and are not counted.
  for (let i = 0; i < 3; i++) await round();
  const rounds: number[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round());
  console.log(`command: npm run bench:path -- --requests ${REQUESTS} --rounds ${ROUNDS} --concurrency ${CONCURRENCY}`);
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}, load ${os.loadavg()[0]?.toFixed(2)}`);
  const sorted = [...rounds].sort((a, b) => a - b);
  console.log(
    `whole answer, admitted to sent, ${CONCURRENCY} at a time: ${median(rounds).toFixed(1)} µs of CPU a request (median of ${ROUNDS} rounds of ${REQUESTS}; fastest ${sorted[0]?.toFixed(1)}, slowest ${sorted.at(-1)?.toFixed(1)})`,
  );
  await close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
