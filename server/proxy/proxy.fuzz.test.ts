/**
 * The proxy's request handling against random clients and a randomly misbehaving upstream
 * (fast-check). Each run is one request from a fresh user with a budget of random size: a random
 * body (shapes, sizes, nesting, unicode, broken JSON) on a random endpoint, answered by the fake
 * upstream in a random way (normal, ignoring max_tokens, impossible usage, no usage, errors,
 * redirects, non-JSON, a stream broken off), read whole or left half-way by the client. After every
 * run: the process answers /health within 50 ms, no hold is left, every counter equals its ledger
 * sum, nothing was charged that the upstream did not serve, and the answer was a well-formed OpenAI
 * response or error.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, userWithKey } from '../testing/harness.js';
import type { Behaviour, RecordedRequest } from '../testing/fake-openai.js';
import { countingAsTheFakes } from '../testing/counting-as-the-fakes.js';
import { startProxy, type ProxyHarness } from '../testing/proxy-harness.js';
import { preloadEncodings } from './token-count.js';

const RUNS = 60;
/** The goal: a /health answered after any request. */
const HEALTH_MS = 50;
/**
 * A /health sent while the random request is being handled: it waits for whatever the request does
 * on the event loop. Looser than HEALTH_MS because other test files share the machine's two cores;
 * what it catches is a stall (a tokenizer spending seconds on one input).
 */
const HEALTH_DURING_REQUEST_MS = 250;

type Endpoint = 'chat' | 'responses' | 'embeddings';
const PATHS: Record<Endpoint, string> = { chat: '/chat/completions', responses: '/responses', embeddings: '/embeddings' };

/** Text of every kind a client sends: short, unicode, one character repeated many times, control characters. */
const text = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc.tuple(fc.constantFrom('A', ' ', '中', '😀', '!', '\n', '9', '\u0000'), fc.integer({ min: 1_000, max: 120_000 })).map(([c, n]) => c.repeat(n)),
);

/** Arrays inside each other, sometimes past the depth bound. */
const nested = fc.integer({ min: 1, max: 400 }).map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown);

const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 4 }), nested, text);

const model = fc.oneof(
  fc.constantFrom('gpt-4o-mini', 'gpt-4o', 'o3-mini', 'text-embedding-3-small', 'my-local-llama'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.integer({ min: 250, max: 3_000 }).map((n) => 'm'.repeat(n)),
  anyValue,
);

const limit = fc.option(fc.oneof(fc.integer({ min: -5, max: 5_000 }), fc.double(), fc.string({ maxLength: 5 })), { nil: undefined });

const message = fc.oneof(
  fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'developer'), content: text }),
  fc.record({ role: fc.constant('user'), content: fc.array(fc.oneof(fc.record({ type: fc.constant('text'), text }), anyValue), { maxLength: 3 }) }),
  anyValue,
);

/** The body as an object (possibly not of the endpoint's shape at all) with random extra fields. */
const bodyObject = (endpoint: Endpoint) =>
  fc
    .record({
      model,
      stream: fc.option(fc.oneof(fc.boolean(), anyValue), { nil: undefined }),
      extra: fc.dictionary(fc.string({ maxLength: 10 }), anyValue, { maxKeys: 3 }),
      payload:
        endpoint === 'chat'
          ? fc.record({ messages: fc.oneof(fc.array(message, { minLength: 1, maxLength: 4 }), anyValue), max_tokens: limit })
          : endpoint === 'responses'
            ? fc.record({ input: fc.oneof(text, fc.array(message, { maxLength: 4 }), anyValue), max_output_tokens: limit })
            : fc.record({ input: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), anyValue) }),
    })
    .map(({ model, stream, extra, payload }) => ({ ...extra, model, ...(stream === undefined ? {} : { stream }), ...payload }));

const body = (endpoint: Endpoint) =>
  fc.oneof(
    { weight: 8, arbitrary: bodyObject(endpoint).map((o) => JSON.stringify(o)) },
    // Broken JSON: a valid body cut short.
    { weight: 1, arbitrary: fc.tuple(bodyObject(endpoint), fc.double({ min: 0, max: 0.99, noNaN: true })).map(([o, at]) => JSON.stringify(o).slice(0, Math.floor(JSON.stringify(o).length * at))) },
  );

const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.record({
    kind: fc.constant('reply' as const),
    outputTokens: fc.integer({ min: 0, max: 400 }),
    ignoreMaxTokens: fc.boolean(),
    reportUsage: fc.boolean(),
    usage: fc.option(
      fc.oneof(
        fc.record({ completion_tokens: fc.integer({ min: -1_000, max: -1 }) }),
        fc.record({ prompt_tokens: fc.constant(1e12), completion_tokens: fc.constant(1e12) }),
        fc.record({ completion_tokens: fc.constant(2.5) }),
      ),
      { nil: undefined },
    ),
  }),
  fc.record({ kind: fc.constant('error' as const), status: fc.constantFrom(400, 401, 403, 404, 429, 500, 503), headers: fc.constantFrom<Record<string, string>>({}, { 'retry-after': '3' }) }),
  fc.record({
    kind: fc.constant('raw' as const),
    status: fc.constantFrom(200, 301, 302, 307),
    headers: fc.constant<Record<string, string>>({ 'content-type': 'application/json', location: 'https://example.com/' }),
    body: fc.constantFrom('', '<html>sign in</html>', '{"id":"chatcmpl-1","choices":[', '[1,2]', 'null'),
  }),
  fc.record({ kind: fc.constant('drop' as const), afterPieces: fc.integer({ min: 0, max: 30 }) }),
);

const run = fc.record({
  endpoint: fc.constantFrom<Endpoint>('chat', 'responses', 'embeddings'),
  budgetTokens: fc.integer({ min: 50, max: 20_000 }),
  upstream: behaviour,
  /** The client reads this many bytes of the answer, then leaves (undefined: reads it all). */
  leaveAfterBytes: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined, freq: 4 }),
}).chain((r) => body(r.endpoint).map((text) => ({ ...r, body: text })));

type Run = typeof run extends fc.Arbitrary<infer R> ? R : never;

interface Answer {
  status: number;
  contentType: string;
  text: string;
  /** The client left before the end. */
  left: boolean;
}

let proxy: ProxyHarness;
let runs = 0;

beforeAll(async () => {
  // As the server does once it listens: the tokenizer's tables take a second to load, not per request.
  preloadEncodings();
  // Output is counted as the fake counts it (a token a piece): "charged ≤ served" compares like with
  // like. lobe-quota's safety factors for other families (tested in estimates.test.ts) would charge
  // a stream broken off by the upstream up to 1.5× the pieces it served, by design.
  proxy = await startProxy({ tokens: countingAsTheFakes() });
});
afterAll(async () => {
  await proxy.close();
});

/** The answer's bytes, or its first `limit` bytes when the client leaves after them. */
async function send(r: Run, key: string): Promise<Answer> {
  const abort = new AbortController();
  const response = await fetch(`${proxy.url}/v1${PATHS[r.endpoint]}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: r.body,
    signal: abort.signal,
    redirect: 'manual',
  });
  const contentType = response.headers.get('content-type') ?? '';
  if (r.leaveAfterBytes === undefined || !response.body) return { status: response.status, contentType, text: await response.text(), left: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { status: response.status, contentType, text, left: false };
    text += decoder.decode(value, { stream: true });
    if (text.length >= r.leaveAfterBytes) {
      abort.abort();
      return { status: response.status, contentType, text, left: true };
    }
  }
}

async function healthMs(): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${proxy.url}/health`);
  expect(response.status).toBe(200);
  await response.json();
  return performance.now() - started;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** OpenAI's error body: `{error: {message, type, …}}`. */
function expectOpenAIError(value: unknown, what: string) {
  expect(isRecord(value) && isRecord(value.error), `${what}: an OpenAI error object`).toBe(true);
  const error = (value as { error: Record<string, unknown> }).error;
  expect(typeof error.message, `${what}: error.message`).toBe('string');
  expect(typeof error.type, `${what}: error.type`).toBe('string');
}

/** The answer is one a client of that API can read: a response or error of its shape, or its event stream. */
function expectWellFormed(r: Run, answer: Answer) {
  if (answer.contentType.includes('text/event-stream')) {
    expect(answer.status).toBe(200);
    const events = answer.text.split('\n\n').filter((e) => e.trim() !== '');
    // The last event may be cut by a client that left; every complete one must parse.
    const complete = answer.left ? events.slice(0, -1) : events;
    const data = complete.map((e) => e.split('\n').find((line) => line.startsWith('data: '))?.slice(6) ?? null);
    for (const d of data) if (d !== null && d !== '[DONE]') expect(() => JSON.parse(d), `event data ${d.slice(0, 80)}`).not.toThrow();
    if (answer.left) return;
    const last = data.at(-1) ?? null;
    if (r.endpoint === 'chat') {
      const ended = last === '[DONE]' || (last !== null && isRecord(JSON.parse(last)) && 'error' in (JSON.parse(last) as object));
      expect(ended, `chat stream ends with [DONE] or an error: ${String(last).slice(0, 120)}`).toBe(true);
    } else {
      const type = last === null ? null : (JSON.parse(last) as { type?: unknown }).type;
      expect(['response.completed', 'response.incomplete', 'response.failed', 'error']).toContain(type);
    }
    return;
  }
  if (answer.left) return;
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(answer.text)), `a JSON answer (${answer.status}): ${answer.text.slice(0, 120)}`).not.toThrow();
  if (answer.status >= 400) {
    expectOpenAIError(parsed, `status ${answer.status}`);
    return;
  }
  expect(answer.status).toBe(200);
  const object = isRecord(parsed) ? parsed.object : undefined;
  expect(object).toBe({ chat: 'chat.completion', responses: 'response', embeddings: 'list' }[r.endpoint]);
}

/** What the fake upstream served to this run's one request, or null when it got none. */
function upstreamRequestOf(before: number): RecordedRequest | null {
  const after = proxy.fake.requests.slice(before);
  expect(after.length).toBeLessThanOrEqual(1);
  return after[0] ?? null;
}

describe('the proxy under random clients and a random upstream', () => {
  it(`${RUNS} runs: /health answers, no hold is left, counters equal the ledger, nothing unserved is charged, every answer well-formed`, async () => {
    await fc.assert(
      fc.asyncProperty(run, async (r) => {
        const userId = `fuzz-${runs++}`;
        const { secret, subject } = await userWithKey(proxy.svc.store, userId);
        await proxy.svc.store.putBudget(
          { scope: { kind: 'user', id: userId }, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: r.budgetTokens, limitMicros: null, thresholds: null, onLimit: 'reject', downgradeTo: null },
          proxy.svc.clock.now(),
        );
        proxy.fake.defaultBehaviour = r.upstream;
        const upstreamBefore = proxy.fake.requests.length;

        const answering = send(r, secret);
        const probe = healthMs();
        const [answer, duringMs] = await Promise.all([answering, probe]);
        expect(duringMs, '/health while the request was handled').toBeLessThan(HEALTH_DURING_REQUEST_MS);
        expectWellFormed(r, answer);

        await eventually(async () => (await proxy.svc.store.listHolds()).length === 0, 5_000, 'no hold left');
        // The process answers at once afterwards (three tries: a scheduler hiccup is not a stall).
        const after = [await healthMs()];
        while (after.every((ms) => ms >= HEALTH_MS) && after.length < 3) after.push(await healthMs());
        expect(Math.min(...after), '/health after the request').toBeLessThan(HEALTH_MS);

        const upstream = upstreamRequestOf(upstreamBefore);
        const entries = (await proxy.svc.store.recentEntries(50)).filter((e) => e.userId === subject.userId);
        if (upstream === null) {
          expect(entries, 'nothing charged for a request that never reached the upstream').toEqual([]);
        } else {
          expect(entries.length).toBeLessThanOrEqual(1);
          const entry = entries[0];
          // Output reported by the upstream for what it served, or our count of what it served.
          if (entry) expect(entry.outputTokens, 'output charged ≤ output served').toBeLessThanOrEqual(upstream.servedPieces);
          const served = r.upstream.kind === 'reply' || r.upstream.kind === 'drop';
          if (!served) expect(entries, 'nothing charged for an upstream error').toEqual([]);
        }
        for (const row of await proxy.svc.store.counterAudit()) {
          expect(row.stored ?? row.ledger, `${row.budgetKey} stored`).toEqual(row.ledger);
          expect(row.cached ?? row.ledger, `${row.budgetKey} in memory`).toEqual(row.ledger);
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 240_000);
});
