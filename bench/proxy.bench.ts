// `npm run bench:proxy`: the proxy's figures. Its targets are measured side by side in one run with
// the same load generator and the same fake OpenAI upstream: the upstream directly, a bare
// pass-through (the best any proxy in Node could do), two floors for whole answers (what any
// metering proxy must do, and that plus the least work of lobe-quota's guarantees: see
// metering-floors.ts) and lobe-quota with its whole admission path.
// The same fake answers Anthropic's Messages streams too (POST /v1/messages), which lobe-quota meters
// through an `api: 'anthropic'` upstream: the Anthropic stream table sets lobe-quota's proxy CPU per
// stream against the bare pass-through's, beside the OpenAI stream table. Then the cost of counting
// prompt tokens (cold vs a repeated conversation turn), stream deltas, and prompts of 100 KB to 1 MB
// by shape (one long run of a character, novel text, ordinary words). Last, the response cache: a
// lobe-quota with cache.enabled answering one request shape as misses (each request new) and as hits.
//
// Threads: the load generator and the fake upstream share the main thread; the two proxies live in
// a worker thread, as a proxy has its own process in production. On a 2-core machine that gives
// each side one core. Each thread's event-loop utilisation is recorded, so the output shows which
// side was the bottleneck and how many busy µs a request cost each thread.
//
// Options: --nonstream N / --stream N / --anthropic N (requests or streams per round; 0 skips),
// --concurrency C (connections of the loaded runs), --rounds R (counted rounds, after one warm-up
// round), --serial N (requests per round over 1 connection; streams get N/5; 0 skips; OpenAI chat
// only), --token-runs N (0 skips the token counting), --cache N (the response cache's misses and
// hits per round, streams N/5; 0 skips),
// --targets direct,bare,floor,guarded,lobe-quota,streamed (e.g. only lobe-quota, to profile it with
// `node --cpu-prof`).
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { createApp } from '../server/app.js';
import { hashSecret, newUserKey } from '../server/auth/secrets.js';
import { systemClock } from '../server/clock.js';
import { loadConfig } from '../server/config/load.js';
import { nodeListener } from '../server/http/node-listener.js';
import type { DefaultBudget } from '../server/config/schema.js';
import { countPrompt } from '../server/proxy/prompt-count.js';
import { countByPieces, createTokenCounter, MAX_PRE_TOKEN_CHARS } from '../server/proxy/token-count.js';
import { ResponseCache } from '../server/proxy/response-cache/response-cache.js';
import { Upstreams } from '../server/proxy/upstreams.js';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';
import {
  ANTHROPIC_MODEL,
  ANTHROPIC_VERSION,
  invalidRequestBody,
  MESSAGE_STOP,
  MESSAGES_PATH,
  messagesRequestBody,
  messagesStreamEvents,
  messagesStreamProblem,
} from './anthropic-stream.js';
import { fmt, median, percentile } from './figures.js';
import { closeServer, listenLocally, responseHeaders } from './local-server.js';
import { readGuardedFloorFile, startFloor, startGuardedFloor, type GuardedFloorCounts, type GuardedFloorFile } from './metering-floors.js';

const MODEL = 'gpt-4o-mini';
/** Content chunks of every answer (streamed one per event, or joined in a whole answer). */
const PIECES = 200;
const CHAT_PATH = '/v1/chat/completions';

/** One user, a generous monthly token budget on them and a monthly $ budget over everyone. */
const BUDGETS: DefaultBudget[] = [
  { scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1e12, limitUsd: null, onLimit: 'reject' },
  { scope: 'global', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: null, limitUsd: 1e9, onLimit: 'reject' },
];

/** The goals from the issue, for lobe-quota against the bare pass-through. */
const GOAL = { rpsRatio: 0.8, addedP50Ms: 1, addedP99Ms: 3 };
/** Issue 17's goals for one instance against the floor: its RPS, its proxy-thread CPU, its added p50 one request at a time. */
const FLOOR_GOAL = { rpsRatio: 0.8, cpuRatio: 1.3, addedP50Us: 250 };

// ---------------------------------------------------------------------------------------------
// Small helpers

const signed = (n: number, digits: number) => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), digits)}`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

/** A small deterministic PRNG (mulberry32), so every run counts the same conversations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the a budget quota token model request stream proxy user project key month day limit price cost ' +
  'answer question please could you explain why how what when where which function return const let ' +
  'value error result data table index query server client upstream latency throughput settle reserve ' +
  'hold ledger window rolling calendar report usage prompt completion output input cached reasoning ' +
  'JSON TypeScript Node.js SQLite Hono undici async await promise callback event loop buffer socket ' +
  'header body status 200 404 429 500 1,024 3.14 2026-11-22 über café naïve 東京 数据 résumé ' +
  'if else for while switch case break continue try catch finally throw new class interface type'
).split(' ');

function words(random: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(random() * WORDS.length)] as string);
  return out.join(' ');
}

/** What the fake answers with: PIECES one-token-ish pieces (" the", " quota", …), the same every time. */
const ANSWER_PIECES = (() => {
  const random = prng(42);
  return Array.from({ length: PIECES }, () => ` ${WORDS[Math.floor(random() * 40)] as string}`);
})();

// ---------------------------------------------------------------------------------------------
// The fake upstream (main thread): OpenAI's POST /v1/chat/completions, whole JSON or SSE, and
// Anthropic's POST /v1/messages, streamed.

const OBFUSCATION = Array.from({ length: 64 }, (_, i) => Buffer.from(`${i}obf${i * 7919}`).toString('base64url').slice(0, 4 + (i % 12)));

interface FakeUpstream {
  origin: string;
  close(): Promise<void>;
}

async function startFakeUpstream(): Promise<FakeUpstream> {
  let seq = 0;
  const server = createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.method === 'POST' && req.url === MESSAGES_PATH) {
      readAll(req, (raw) => answerMessages(res, raw, seq++));
      return;
    }
    if (req.method !== 'POST' || req.url !== CHAT_PATH) {
      sendJson(res, 404, { error: { message: `Invalid URL (${req.method} ${req.url})`, type: 'invalid_request_error', param: null, code: null } });
      req.resume();
      return;
    }
    readAll(req, (raw) => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        sendJson(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null } });
        return;
      }
      const limit = [body.max_completion_tokens, body.max_tokens].find((v): v is number => typeof v === 'number');
      const pieces = limit === undefined ? ANSWER_PIECES : ANSWER_PIECES.slice(0, Math.max(0, limit));
      const finish = pieces.length < ANSWER_PIECES.length ? 'length' : 'stop';
      const id = `chatcmpl-bench${(seq++).toString(36).padStart(10, '0')}`;
      // The fake's "tokenizer": a deterministic ceil(bytes / 4) of the body, like the test fake's.
      const usage = {
        prompt_tokens: Math.ceil(raw.length / 4),
        completion_tokens: pieces.length,
        total_tokens: Math.ceil(raw.length / 4) + pieces.length,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      };
      if (body.stream === true) {
        const options = (typeof body.stream_options === 'object' && body.stream_options) || {};
        const includeUsage = (options as { include_usage?: unknown }).include_usage === true;
        void streamChat(res, { id, model: body.model, pieces, finish, usage: includeUsage ? usage : null }).catch(() => res.destroy());
        return;
      }
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), refusal: null, annotations: [] }, logprobs: null, finish_reason: finish }],
        usage,
        service_tier: 'default',
        system_fingerprint: 'fp_bench0fake',
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

function readAll(req: IncomingMessage, then: (raw: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => then(Buffer.concat(chunks).toString('utf8')));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-request-id': 'req_bench',
    'openai-processing-ms': '1',
  });
  res.end(payload);
}

/**
 * OpenAI's chat stream framing: a role chunk, one chunk per content piece, a finish chunk, the
 * usage chunk when asked for (and `usage: null` on every other chunk then), `data: [DONE]`. Every
 * event is its own write, and the fake yields to the event loop between events, as a model that
 * generates them one by one does (so a proxy sees them arrive separately, not in one buffer).
 */
async function streamChat(
  res: ServerResponse,
  a: { id: string; model: unknown; pieces: string[]; finish: string; usage: object | null },
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-request-id': 'req_bench',
    'openai-processing-ms': '1',
  });
  res.flushHeaders();
  const created = Math.floor(Date.now() / 1000);
  let n = 0;
  const send = async (payload: Record<string, unknown>): Promise<boolean> => {
    if (res.destroyed) return false;
    const chunk = {
      id: a.id,
      object: 'chat.completion.chunk',
      created,
      model: a.model,
      service_tier: 'default',
      system_fingerprint: 'fp_bench0fake',
      ...payload,
      ...(a.usage && !('usage' in payload) ? { usage: null } : {}),
      obfuscation: OBFUSCATION[n++ % OBFUSCATION.length],
    };
    return writeEvent(res, `data: ${JSON.stringify(chunk)}\n\n`);
  };
  const choice = (delta: object, finishReason: string | null = null) => ({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] });
  if (!(await send(choice({ role: 'assistant', content: '', refusal: null })))) return;
  for (const piece of a.pieces) if (!(await send(choice({ content: piece })))) return;
  if (!(await send(choice({}, a.finish)))) return;
  if (a.usage && !(await send({ choices: [], usage: a.usage }))) return;
  if (!(await writeEvent(res, 'data: [DONE]\n\n'))) return;
  res.end();
}

/**
 * Anthropic's Messages API, as much of it as the bench asks for: a streamed text answer of the same
 * pieces as the chat answers, cut at `max_tokens`; the prompt's tokens counted as the chat fake
 * counts them. A whole answer is not needed here, so a request without `stream` is refused.
 */
function answerMessages(res: ServerResponse, raw: string, seq: number): void {
  const refuse = (message: string) => {
    const payload = JSON.stringify(invalidRequestBody(message));
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'request-id': 'req_bench' });
    res.end(payload);
  };
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return refuse('There was an error parsing the body of your request as JSON.');
  }
  if (typeof body.max_tokens !== 'number') return refuse('max_tokens: Field required');
  if (body.stream !== true) return refuse('stream: the bench fake answers streams only');
  const pieces = ANSWER_PIECES.slice(0, Math.max(0, body.max_tokens));
  const events = messagesStreamEvents({
    id: `msg_bench${seq.toString(36).padStart(15, '0')}`,
    model: body.model,
    pieces,
    stopReason: pieces.length < ANSWER_PIECES.length ? 'max_tokens' : 'end_turn',
    inputTokens: Math.ceil(raw.length / 4),
  });
  void streamMessages(res, events).catch(() => res.destroy());
}

/** The events of a Messages stream, written as {@link streamChat} writes a chat stream's, under Anthropic's headers. */
async function streamMessages(res: ServerResponse, events: Iterable<string>): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'request-id': 'req_bench' });
  res.flushHeaders();
  for (const event of events) if (!(await writeEvent(res, event))) return;
  res.end();
}

/** One event, then the next turn of the event loop (or a drain, when the reader is slow). */
async function writeEvent(res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(text)) await nextTurn();
  else await Promise.race([once(res, 'drain'), once(res, 'close')]);
  return !res.destroyed;
}

// ---------------------------------------------------------------------------------------------
// The proxy thread: the bare pass-through and lobe-quota, both in front of the fake.

interface WorkerInput {
  fakeOrigin: string;
}
type ToWorker = { type: 'elu' } | { type: 'close' };
/** A thread's event-loop utilisation and the CPU time it has used (null where the OS does not tell). */
interface ThreadUse {
  elu: EventLoopUtilization;
  cpuMs: number | null;
}
type FromWorker =
  | { type: 'ready'; bare: string; floor: string; guarded: string; lobeQuota: string; streamed: string; cached: string; key: string }
  | { type: 'elu'; use: ThreadUse }
  | { type: 'closed'; ledger: LedgerSummary; guarded: GuardedFloorFile & GuardedFloorCounts };

interface LedgerSummary {
  rows: number;
  outputTokens: number;
  outcomes: Record<string, number>;
  sources: Record<string, number>;
}

/**
 * CPU time this thread has used, in ms, from Linux's /proc/thread-self/stat (utime + stime, in
 * clock ticks of 10 ms); null where that file does not exist. Rounds are seconds long, so the tick
 * is fine enough, and unlike event-loop busy time it does not count time the OS gave to others.
 */
function threadCpuMs(): number | null {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

const OPENAI_FORWARDED = ['content-type', 'accept'] as const;
const ANTHROPIC_FORWARDED = [...OPENAI_FORWARDED, 'anthropic-version'] as const;
const ANTHROPIC_UPSTREAM_KEY = 'sk-ant-bench-upstream';

/**
 * The least a proxy must do: read the request (a chat body is small), forward it with undici under
 * the upstream's key (in the header of the request's API: for /v1/messages Anthropic's `x-api-key`,
 * with the client's `anthropic-version`) and pipe the answer back as it arrives. No parsing, no
 * accounting. (`.pipe` rather than `stream.pipeline`, which costs an AbortController and a
 * DOMException per request on Node 20.)
 */
async function startBarePassThrough(upstreamOrigin: string): Promise<{ url: string; close: () => Promise<void> }> {
  const pool = new Pool(upstreamOrigin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const fail = (res: ServerResponse) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"bad gateway","type":"server_error","param":null,"code":null}}');
  };
  const server = createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const anthropic = req.url === MESSAGES_PATH;
      const headers: Record<string, string> = anthropic ? { 'x-api-key': ANTHROPIC_UPSTREAM_KEY } : { authorization: 'Bearer sk-bench-upstream' };
      for (const name of anthropic ? ANTHROPIC_FORWARDED : OPENAI_FORWARDED) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      pool.request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'POST', headers, body }).then(
        (up) => {
          res.writeHead(up.statusCode, responseHeaders(up.headers));
          up.body.on('error', () => res.destroy());
          res.on('close', () => {
            if (!res.writableFinished) up.body.destroy();
          });
          up.body.pipe(res);
        },
        () => fail(res),
      );
    });
  });
  return listenLocally(server, () => pool.close());
}

async function proxyThread(input: WorkerInput): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('proxyThread: not in a worker');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-proxy-bench-'));
  const file = path.join(dir, 'lobe-quota.db');

  const bare = await startBarePassThrough(input.fakeOrigin);
  const floor = await startFloor(input.fakeOrigin, path.join(dir, 'floor.db'));

  const loaded = loadConfig({ env: {}, cwd: dir });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  const config = {
    ...loaded.config,
    dataDir: dir,
    upstreams: [
      { name: 'fake', baseUrl: `${input.fakeOrigin}/v1`, apiKey: 'sk-bench-upstream', models: ['*'] },
      // Anthropic's SDK takes the origin: the Messages dialect adds /v1/messages.
      { name: 'fake-anthropic', api: 'anthropic' as const, baseUrl: input.fakeOrigin, apiKey: ANTHROPIC_UPSTREAM_KEY, models: ['claude-*'] },
    ],
    // Priced here (Claude Sonnet 4.5's list price) so that the global $ budget admits it whether or
    // not the shipped table knows the model.
    prices: { ...loaded.config.prices, [ANTHROPIC_MODEL]: { input: 3, cachedInput: 0.3, output: 15 } },
    defaultBudgets: BUDGETS,
  };
  const now = Date.now();
  const { secret, prefix } = newUserKey();
  /** lobe-quota on a store of its own, with the bench user and key. */
  const startLobeQuota = async (dbFile: string, streamWholeAnswers: boolean, cached = false) => {
    const store = SqliteStore.open({ file: dbFile, defaultBudgets: BUDGETS, defaultThresholds: config.alertThresholds });
    await store.createUser({ id: 'bench', name: 'Bench', projectId: null }, now);
    await store.createKey({ id: 'key_bench', userId: 'bench', name: 'bench', service: false, secretHash: hashSecret(secret), prefix }, now);
    const upstreams = Upstreams.fromConfig(config);
    const cache = { ...config.cache, enabled: cached };
    // The response cache in its own file in the temp dir, as main opens it in dataDir.
    const responseCache = cached ? ResponseCache.open(cache, systemClock, path.join(dir, 'cache')) : undefined;
    const app = createApp({
      store,
      config: { ...config, cache, proxy: { ...config.proxy, streamWholeAnswers } },
      clock: systemClock,
      adminTokenHash: hashSecret('bench-admin-token-000000'),
      upstreams,
      ...(responseCache ? { responseCache } : {}),
    });
    // Served as main serves it (server/main.ts): the metered routes straight from Node.
    const server = createServer(nodeListener(app));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      async close() {
        await closeServer(server as Server);
        await upstreams.close();
        await store.close();
        responseCache?.close();
      },
    };
  };
  const guardedFile = path.join(dir, 'guarded.db');
  const guarded = await startGuardedFloor(input.fakeOrigin, guardedFile, { secret, budgets: BUDGETS });
  const lobeQuota = await startLobeQuota(file, false);
  // The same, asking the upstream for a stream when the client wants a whole answer (proxy.streamWholeAnswers).
  const streamed = await startLobeQuota(path.join(dir, 'streamed.db'), true);
  // The same with the response cache on (the cache-hit target).
  const cached = await startLobeQuota(path.join(dir, 'cached.db'), false, true);

  const post = (message: FromWorker) => port.postMessage(message);
  post({ type: 'ready', bare: bare.url, floor: floor.url, guarded: guarded.url, lobeQuota: lobeQuota.url, streamed: streamed.url, cached: cached.url, key: secret });
  for (;;) {
    const [message] = (await once(port, 'message')) as [ToWorker];
    if (message.type === 'elu') post({ type: 'elu', use: { elu: performance.eventLoopUtilization(), cpuMs: threadCpuMs() } });
    else break;
  }

  await lobeQuota.close();
  await streamed.close();
  await cached.close();
  await bare.close();
  await floor.close();
  const guardedCounts = guarded.counts();
  await guarded.close();
  const guardedLeft = { ...readGuardedFloorFile(guardedFile), ...guardedCounts };
  const db = new Database(file, { readonly: true });
  const totals = db.prepare('SELECT count(*) AS rows, coalesce(sum(output_tokens), 0) AS output FROM ledger').get() as { rows: number; output: number };
  const group = (column: 'outcome' | 'source') =>
    Object.fromEntries((db.prepare(`SELECT ${column} AS k, count(*) AS n FROM ledger GROUP BY ${column}`).all() as { k: string; n: number }[]).map((r) => [r.k, r.n]));
  const ledger: LedgerSummary = { rows: totals.rows, outputTokens: totals.output, outcomes: group('outcome'), sources: group('source') };
  db.close();
  rmSync(dir, { recursive: true, force: true });
  post({ type: 'closed', ledger, guarded: guardedLeft });
}

/** The main thread's handle on the proxy thread: one request/answer at a time. */
class ProxyThread {
  private readonly worker: Worker;
  private failure: Error | null = null;
  private readonly waiting: Array<{ resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];

  constructor(input: WorkerInput) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: input });
    this.worker.on('message', (m: FromWorker) => this.waiting.shift()?.resolve(m));
    const fail = (error: Error) => {
      this.failure = error;
      for (const w of this.waiting.splice(0)) w.reject(error);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`proxy thread exited (code ${code})`)));
  }

  next(): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async ask(message: ToWorker): Promise<FromWorker> {
    const answer = this.next();
    this.worker.postMessage(message);
    return answer;
  }

  async use(): Promise<ThreadUse> {
    const m = await this.ask({ type: 'elu' });
    if (m.type !== 'elu') throw new Error(`proxy thread: expected elu, got ${m.type}`);
    return m.use;
  }

  async close(): Promise<Extract<FromWorker, { type: 'closed' }>> {
    const m = await this.ask({ type: 'close' });
    if (m.type !== 'closed') throw new Error(`proxy thread: expected closed, got ${m.type}`);
    await once(this.worker, 'exit');
    return m;
  }
}

// ---------------------------------------------------------------------------------------------
// Load generation (main thread)

/** A whole chat completion, a chat completion stream, or an Anthropic Messages stream. */
type Kind = 'nonstream' | 'stream' | 'anthropic';
type TargetName = 'direct' | 'bare' | 'floor' | 'guarded' | 'lobe-quota' | 'streamed';
const TARGET_LABEL: Record<TargetName, string> = {
  direct: 'fake upstream directly',
  bare: 'bare pass-through',
  floor: 'floor: parse + ledger',
  guarded: 'floor + guarantees',
  'lobe-quota': 'lobe-quota',
  streamed: 'lobe-quota, streamed up',
};

interface Target {
  name: TargetName;
  pool: Pool;
  /** Proxies run in the worker; the direct target has no proxy thread. */
  proxied: boolean;
}

/** One request, sent alike to every target. */
interface Call {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A small chat as a client sends it: a system prompt, some history, a question (~1.3 KB); the same conversation in either API. */
function callOf(kind: Kind, key: string): Call {
  const random = prng(7);
  const system = `You are a helpful assistant. ${words(random, 40)}`;
  const history = [
    { role: 'user', content: words(random, 50) },
    { role: 'assistant', content: words(random, 60) },
    { role: 'user', content: words(random, 30) },
  ];
  if (kind === 'anthropic') {
    const headers = { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': ANTHROPIC_VERSION };
    return { path: MESSAGES_PATH, headers, body: messagesRequestBody(system, history) };
  }
  const messages = [{ role: 'system', content: system }, ...history];
  const body = kind === 'stream' ? { model: MODEL, messages, stream: true, stream_options: { include_usage: true }, temperature: 0.7 } : { model: MODEL, messages, temperature: 0.7 };
  return { path: CHAT_PATH, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) };
}

const EXPECTED_TEXT = ANSWER_PIECES.join('');

/** The cheap check every response gets (the same for every target). */
function quickCheck(kind: Kind, status: number, text: string): void {
  const ok = status === 200 && (kind === 'stream' ? text.endsWith('data: [DONE]\n\n') : kind === 'anthropic' ? text.endsWith(MESSAGE_STOP) : text.includes('"usage"'));
  if (!ok) throw new Error(`bad ${kind} response (${status}): ${text.slice(0, 300)}`);
}

/** The thorough check, once per target and kind: the exact answer came through, framed as its API frames it. */
function fullCheck(kind: Kind, text: string, target: TargetName): void {
  const fail = (why: string) => {
    throw new Error(`${target} ${kind}: ${why}\n${text.slice(0, 500)}`);
  };
  if (kind === 'anthropic') {
    const problem = messagesStreamProblem(text, EXPECTED_TEXT, PIECES);
    if (problem !== null) fail(problem);
    return;
  }
  if (kind === 'nonstream') {
    const json = JSON.parse(text) as { choices?: { message?: { content?: string } }[]; usage?: { completion_tokens?: number } };
    if (json.choices?.[0]?.message?.content !== EXPECTED_TEXT) fail('content differs');
    if (json.usage?.completion_tokens !== PIECES) fail('usage missing');
    return;
  }
  if (!text.endsWith('\n\n')) fail('stream does not end with a blank line');
  const events = text.slice(0, -2).split('\n\n');
  if (events.some((e) => !e.startsWith('data: '))) fail('an event is not a data line');
  if (events.at(-1) !== 'data: [DONE]') fail('no [DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as { choices: { delta?: { content?: string } }[]; usage?: unknown });
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  if (content !== EXPECTED_TEXT) fail('content differs');
  // role + pieces + finish + usage
  if (chunks.length !== PIECES + 3) fail(`${chunks.length} chunks, expected ${PIECES + 3}`);
  if (!chunks.at(-1)?.usage) fail('no usage chunk');
}

interface RoundResult {
  rps: number;
  latencies: number[];
  /** Busy ms of each thread during the round. */
  mainBusyMs: number;
  proxyBusyMs: number | null;
  /** CPU ms the proxy thread used during the round. */
  proxyCpuMs: number | null;
  mainUtilisation: number;
  proxyUtilisation: number | null;
}

async function runRound(
  target: Target,
  proxy: ProxyThread,
  kind: Kind,
  /** The request, or the ith request of the round (the cache target's misses differ each time). */
  call: Call | ((i: number) => Call),
  count: number,
  concurrency: number,
): Promise<RoundResult> {
  const latencies = new Array<number>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const sent = typeof call === 'function' ? call(i) : call;
      const t = performance.now();
      const res = await target.pool.request({ ...sent, method: 'POST' });
      const text = await res.body.text();
      latencies[i] = performance.now() - t;
      quickCheck(kind, res.statusCode, text);
    }
  };
  const proxyStart = target.proxied ? await proxy.use() : null;
  const mainStart = performance.eventLoopUtilization();
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const seconds = (performance.now() - start) / 1000;
  const main = performance.eventLoopUtilization(mainStart);
  const proxyEnd = proxyStart ? await proxy.use() : null;
  const proxyElu = proxyStart && proxyEnd ? performance.eventLoopUtilization(proxyEnd.elu, proxyStart.elu) : null;
  return {
    rps: count / seconds,
    latencies,
    mainBusyMs: main.active,
    proxyBusyMs: proxyElu?.active ?? null,
    proxyCpuMs: proxyStart?.cpuMs != null && proxyEnd?.cpuMs != null ? proxyEnd.cpuMs - proxyStart.cpuMs : null,
    mainUtilisation: main.utilization,
    proxyUtilisation: proxyElu?.utilization ?? null,
  };
}

interface Figures {
  rps: number;
  rpsRounds: number[];
  p50: number;
  p99: number;
  /** Busy µs per request of each thread, and utilisation (0–1), medians over rounds. */
  mainUsPerRequest: number;
  proxyUsPerRequest: number | null;
  /** The proxy thread's CPU µs per request, from the OS: unlike busy time, not inflated by other processes. */
  proxyCpuUsPerRequest: number | null;
  mainUtilisation: number;
  proxyUtilisation: number | null;
}

function summarise(rounds: RoundResult[], count: number): Figures {
  const proxied = rounds.every((r) => r.proxyBusyMs !== null);
  return {
    rps: median(rounds.map((r) => r.rps)),
    rpsRounds: rounds.map((r) => r.rps),
    p50: median(rounds.map((r) => percentile(r.latencies, 50))),
    p99: median(rounds.map((r) => percentile(r.latencies, 99))),
    mainUsPerRequest: median(rounds.map((r) => (r.mainBusyMs * 1000) / count)),
    proxyUsPerRequest: proxied ? median(rounds.map((r) => ((r.proxyBusyMs as number) * 1000) / count)) : null,
    proxyCpuUsPerRequest: rounds.every((r) => r.proxyCpuMs !== null) && rounds.length > 0 ? median(rounds.map((r) => ((r.proxyCpuMs as number) * 1000) / count)) : null,
    mainUtilisation: median(rounds.map((r) => r.mainUtilisation)),
    proxyUtilisation: proxied ? median(rounds.map((r) => r.proxyUtilisation as number)) : null,
  };
}

/**
 * Every target once per round, in turn, so that the machine's drifts hit them alike; round 0 warms
 * up (JIT, connections, caches) and is not counted.
 */
async function measure(
  allTargets: Target[],
  proxy: ProxyThread,
  kind: Kind,
  key: string,
  count: number,
  concurrency: number,
  rounds: number,
): Promise<Map<TargetName, Figures>> {
  // The floors have no streams; the streamed target differs from lobe-quota only for whole answers.
  const targets = kind === 'nonstream' ? allTargets : allTargets.filter((t) => t.name !== 'floor' && t.name !== 'guarded' && t.name !== 'streamed');
  const call = callOf(kind, key);
  for (const target of targets) {
    const res = await target.pool.request({ ...call, method: 'POST' });
    const text = await res.body.text();
    quickCheck(kind, res.statusCode, text);
    fullCheck(kind, text, target.name);
  }
  const results = new Map<TargetName, RoundResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const target of targets) {
      const result = await runRound(target, proxy, kind, call, count, concurrency);
      if (round > 0) results.get(target.name)?.push(result);
    }
  }
  return new Map(targets.map((t) => [t.name, summarise(results.get(t.name) ?? [], count)]));
}

function printTable(title: string, figures: Map<TargetName, Figures>, withRounds: boolean): void {
  printRows(title, [...figures].map(([name, f]) => [TARGET_LABEL[name], f]), withRounds);
}

function printRows(title: string, rows: Array<[string, Figures]>, withRounds: boolean): void {
  console.log(title);
  console.log(`  ${'target'.padEnd(24)} ${'RPS'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}   busy µs/req (load+fake | proxy)   utilisation (load+fake | proxy)`);
  for (const [label, f] of rows) {
    const busy = `${fmt(f.mainUsPerRequest).padStart(6)} | ${f.proxyUsPerRequest === null ? '     –' : fmt(f.proxyUsPerRequest).padStart(6)}`;
    const util = `${fmt(f.mainUtilisation, 2)} | ${f.proxyUtilisation === null ? '   –' : fmt(f.proxyUtilisation, 2)}`;
    console.log(`  ${label.padEnd(24)} ${fmt(f.rps).padStart(8)} ${fmt(f.p50, 3).padStart(8)} ${fmt(f.p99, 3).padStart(8)}   ${busy.padEnd(31)}   ${util}`);
    if (withRounds) console.log(`  ${''.padEnd(24)} rounds: ${f.rpsRounds.map((r) => fmt(r)).join(', ')} RPS`);
  }
}

/**
 * A request the response cache may keep: `callOf`'s conversation at temperature 0. With a `nonce`
 * its question ends with it, so each is a new request (a miss, whose answer is then stored); without
 * one it is the same request every time (a hit, once stored).
 */
function cacheCallOf(kind: 'nonstream' | 'stream', key: string, nonce?: string): Call {
  const call = callOf(kind, key);
  const body = JSON.parse(call.body) as { temperature: number; messages: Array<{ content: string }> };
  body.temperature = 0;
  const last = body.messages.at(-1);
  if (last && nonce !== undefined) last.content += ` (${nonce})`;
  return { ...call, body: JSON.stringify(body) };
}

/**
 * The cache-hit target: lobe-quota with the response cache on, answering requests of one shape
 * either as misses (each request new: admitted, sent to the fake upstream, metered, settled, its
 * answer sealed and stored) or as hits (the same request again: looked up, opened, recorded in the
 * ledger and replayed, nothing upstream). Both in turn each round, as measure() runs its targets.
 */
async function measureCache(
  pool: Pool,
  proxy: ProxyThread,
  kind: 'nonstream' | 'stream',
  key: string,
  count: number,
  concurrency: number,
  rounds: number,
): Promise<{ miss: Figures; hit: Figures }> {
  const target: Target = { name: 'lobe-quota', pool, proxied: true };
  let sent = 0;
  const miss = () => cacheCallOf(kind, key, `miss ${++sent}`);
  const hit = cacheCallOf(kind, key);
  for (const [expected, call] of [['miss', hit], ['hit', hit]] as const) {
    const res = await pool.request({ ...call, method: 'POST' });
    const text = await res.body.text();
    if (res.headers['x-quota-cache'] !== expected) throw new Error(`cache target ${kind}: x-quota-cache ${String(res.headers['x-quota-cache'])}, expected ${expected}`);
    quickCheck(kind, res.statusCode, text);
    fullCheck(kind, text, 'lobe-quota');
  }
  const results = { miss: [] as RoundResult[], hit: [] as RoundResult[] };
  for (let round = 0; round <= rounds; round++) {
    const misses = await runRound(target, proxy, kind, miss, count, concurrency);
    const hits = await runRound(target, proxy, kind, hit, count, concurrency);
    if (round > 0) {
      results.miss.push(misses);
      results.hit.push(hits);
    }
  }
  return { miss: summarise(results.miss, count), hit: summarise(results.hit, count) };
}

function printCache(title: string, figures: { miss: Figures; hit: Figures }): void {
  printRows(title, [['cache miss (upstream)', figures.miss], ['cache hit', figures.hit]], true);
  const { miss, hit } = figures;
  const cpu = miss.proxyCpuUsPerRequest !== null && hit.proxyCpuUsPerRequest !== null ? `, proxy CPU ${fmt(hit.proxyCpuUsPerRequest)} µs vs ${fmt(miss.proxyCpuUsPerRequest)} µs a request` : '';
  console.log(`  hits against misses: ${fmt(hit.rps / miss.rps, 2)}× the RPS, p50 ${fmt(hit.p50 / miss.p50, 2)}× and p99 ${fmt(hit.p99 / miss.p99, 2)}× the latency${cpu}`);
}

function printVerdict(figures: Map<TargetName, Figures>, checkRps: boolean): void {
  const lq = figures.get('lobe-quota');
  const bare = figures.get('bare');
  const floor = figures.get('floor');
  if (lq && floor) printAgainstFloor(lq, floor, checkRps);
  const guarded = figures.get('guarded');
  if (guarded && floor) printGuarantees(guarded, floor, lq, checkRps);
  if (!lq || !bare) return;
  const ratio = lq.rps / bare.rps;
  const addedP50 = lq.p50 - bare.p50;
  const addedP99 = lq.p99 - bare.p99;
  const parts = [
    ...(checkRps ? [`RPS ${fmt(ratio, 2)}× the bare pass-through (goal ≥ ${fmt(GOAL.rpsRatio, 1)}×: ${verdict(ratio >= GOAL.rpsRatio)})`] : []),
    `added p50 ${signed(addedP50, 3)} ms (goal ≤ ${GOAL.addedP50Ms} ms: ${verdict(addedP50 <= GOAL.addedP50Ms)})`,
    `added p99 ${signed(addedP99, 3)} ms (goal ≤ ${GOAL.addedP99Ms} ms: ${verdict(addedP99 <= GOAL.addedP99Ms)})`,
  ];
  console.log(`  lobe-quota vs bare: ${parts.join(';\n                      ')}`);
  if (lq.proxyUsPerRequest !== null && bare.proxyUsPerRequest !== null) {
    console.log(
      `  proxy-thread busy time per request: lobe-quota ${fmt(lq.proxyUsPerRequest)} µs vs bare ${fmt(bare.proxyUsPerRequest)} µs (${fmt(lq.proxyUsPerRequest / bare.proxyUsPerRequest, 2)}×, ${signed(lq.proxyUsPerRequest - bare.proxyUsPerRequest, 0)} µs)`,
    );
  }
  if (floor && checkRps) {
    console.log(
      `  floor vs bare:      RPS ${fmt(floor.rps / bare.rps, 2)}×` +
        (floor.proxyCpuUsPerRequest !== null && bare.proxyCpuUsPerRequest !== null ? `, CPU ${fmt(floor.proxyCpuUsPerRequest / bare.proxyCpuUsPerRequest, 2)}× the bare pass-through's` : ''),
    );
  }
  if (lq.proxyCpuUsPerRequest !== null && bare.proxyCpuUsPerRequest !== null) {
    console.log(
      `  proxy-thread CPU time per request:  lobe-quota ${fmt(lq.proxyCpuUsPerRequest)} µs vs bare ${fmt(bare.proxyCpuUsPerRequest)} µs (${fmt(lq.proxyCpuUsPerRequest / bare.proxyCpuUsPerRequest, 2)}×, ${signed(lq.proxyCpuUsPerRequest - bare.proxyCpuUsPerRequest, 0)} µs)`,
    );
  }
  const streamed = figures.get('streamed');
  if (streamed && streamed.proxyCpuUsPerRequest !== null && lq.proxyCpuUsPerRequest !== null) {
    console.log(
      `  proxy.streamWholeAnswers: CPU ${fmt(streamed.proxyCpuUsPerRequest)} µs per whole answer vs ${fmt(lq.proxyCpuUsPerRequest)} µs passed through (${fmt(streamed.proxyCpuUsPerRequest / lq.proxyCpuUsPerRequest, 2)}×, ${signed(streamed.proxyCpuUsPerRequest - lq.proxyCpuUsPerRequest, 0)} µs)` +
        (checkRps ? `; RPS ${fmt(streamed.rps / lq.rps, 2)}× lobe-quota's` : `; added p50 ${signed(streamed.p50 - lq.p50, 3)} ms`),
    );
  }
  if (checkRps && bare.mainUtilisation >= 0.95) {
    console.log(
      `  note: the load+fake thread was saturated (utilisation ${fmt(bare.mainUtilisation, 2)}) behind the bare pass-through, so the RPS ratio\n` +
        '        is bounded by the load generator and the fake, not by the proxies; the busy time per request is the proxy figure.',
    );
  }
}

/**
 * lobe-quota against the floor (issue 17): whatever it spends beyond parsing both bodies and
 * committing one ledger row is the price of keys, budgets, counting, headers and the framework.
 */
function printAgainstFloor(lq: Figures, floor: Figures, loaded: boolean): void {
  const parts: string[] = [];
  if (loaded) parts.push(`RPS ${fmt(lq.rps / floor.rps, 2)}× the floor's (goal ≥ ${fmt(FLOOR_GOAL.rpsRatio, 1)}×: ${verdict(lq.rps / floor.rps >= FLOOR_GOAL.rpsRatio)})`);
  if (lq.proxyCpuUsPerRequest !== null && floor.proxyCpuUsPerRequest !== null) {
    const ratio = lq.proxyCpuUsPerRequest / floor.proxyCpuUsPerRequest;
    parts.push(
      `proxy-thread CPU ${fmt(lq.proxyCpuUsPerRequest)} µs vs ${fmt(floor.proxyCpuUsPerRequest)} µs per request (${fmt(ratio, 2)}×, ${signed(lq.proxyCpuUsPerRequest - floor.proxyCpuUsPerRequest, 0)} µs; goal ≤ ${fmt(FLOOR_GOAL.cpuRatio, 1)}×: ${verdict(ratio <= FLOOR_GOAL.cpuRatio)})`,
    );
  }
  if (!loaded) {
    const addedUs = (lq.p50 - floor.p50) * 1000;
    parts.push(`added p50 ${signed(addedUs, 0)} µs (goal ≤ ${FLOOR_GOAL.addedP50Us} µs: ${verdict(addedUs <= FLOOR_GOAL.addedP50Us)})`);
  }
  console.log(`  lobe-quota vs floor: ${parts.join(';\n                       ')}`);
}

/**
 * The floor + guarantees target against the floor (what lobe-quota's guarantees themselves cost,
 * done the least way) and lobe-quota against it (what its own machinery costs beyond them).
 */
function printGuarantees(guarded: Figures, floor: Figures, lq: Figures | undefined, loaded: boolean): void {
  const against = (a: Figures, b: Figures): string => {
    const parts = loaded ? [`RPS ${fmt(a.rps / b.rps, 2)}×`] : [`added p50 ${signed((a.p50 - b.p50) * 1000, 0)} µs`];
    if (a.proxyCpuUsPerRequest !== null && b.proxyCpuUsPerRequest !== null) {
      parts.push(`proxy-thread CPU ${fmt(a.proxyCpuUsPerRequest)} µs vs ${fmt(b.proxyCpuUsPerRequest)} µs per request (${fmt(a.proxyCpuUsPerRequest / b.proxyCpuUsPerRequest, 2)}×, ${signed(a.proxyCpuUsPerRequest - b.proxyCpuUsPerRequest, 0)} µs)`);
    }
    return parts.join(', ');
  };
  console.log(`  floor + guarantees vs floor: ${against(guarded, floor)}`);
  if (lq) console.log(`  lobe-quota vs floor + guarantees: ${against(lq, guarded)}`);
}

/** What an Anthropic stream costs each proxy's thread next to an OpenAI stream of the same text (its events are larger, and named). */
function printAgainstOpenAi(anthropic: Map<TargetName, Figures>, openAi: Map<TargetName, Figures>): void {
  const parts: string[] = [];
  for (const name of ['bare', 'lobe-quota'] as const) {
    const a = anthropic.get(name)?.proxyCpuUsPerRequest;
    const o = openAi.get(name)?.proxyCpuUsPerRequest;
    if (a != null && o != null) parts.push(`${TARGET_LABEL[name]} ${fmt(a)} µs vs ${fmt(o)} µs (${fmt(a / o, 2)}×)`);
  }
  if (parts.length > 0) console.log(`  proxy-thread CPU time per Anthropic stream vs per OpenAI stream: ${parts.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------
// Token counting

function conversation(targetBytes: number, seed: number): { role: string; content: string }[] {
  const random = prng(seed);
  const messages = [{ role: 'system', content: `You are a helpful assistant. ${words(random, 40)}` }];
  while (JSON.stringify(messages).length < targetBytes) {
    messages.push({ role: messages.length % 2 ? 'user' : 'assistant', content: words(random, 15 + Math.floor(random() * 50)) });
  }
  return messages;
}

const timeUs = (fn: () => void): number => {
  const t = performance.now();
  fn();
  return (performance.now() - t) * 1000;
};

/** gpt-tokenizer's own cache of merged word pieces (shared with the proxy's counter: same module). */
const o200k = createRequire(import.meta.url)('gpt-tokenizer/encoding/o200k_base') as {
  clearMergeCache(): void;
  countTokens(text: string, options: { disallowedSpecial: Set<string> }): number;
};

function promptCounting(runs: number): void {
  const probe = createTokenCounter();
  console.log(`\nprompt token counting, ${MODEL} (createTokenCounter().countChatPrompt; median of ${runs} runs):`);
  for (const [label, bytes, seed] of [
    ['~4 KB', 4 * 1024, 1],
    ['~64 KB', 64 * 1024, 2],
  ] as const) {
    const history = conversation(bytes, seed);
    const random = prng(seed + 100);
    const tokens = probe.countChatPrompt(MODEL, { model: MODEL, messages: history });
    // Warm up the encoder (loaded on first use) and the JIT before timing.
    for (let i = 0; i < 3; i++) createTokenCounter().countChatPrompt(MODEL, { model: MODEL, messages: history });

    // First turn: a new counter, so no message of the conversation is in lobe-quota's cache; once
    // with gpt-tokenizer's merge cache emptied too (every word piece new), once with it warm.
    const coldest: number[] = [];
    const cold: number[] = [];
    for (let r = 0; r < runs; r++) {
      o200k.clearMergeCache();
      const empty = createTokenCounter();
      coldest.push(timeUs(() => empty.countChatPrompt(MODEL, { model: MODEL, messages: history })));
      const counter = createTokenCounter();
      cold.push(timeUs(() => counter.countChatPrompt(MODEL, { model: MODEL, messages: history })));
    }
    // Repeated turn: the same counter saw the history; each turn adds one new message.
    const warmCounter = createTokenCounter();
    warmCounter.countChatPrompt(MODEL, { model: MODEL, messages: history });
    const turns = Array.from({ length: runs + 3 }, (_, r) => ({ model: MODEL, messages: [...history, { role: 'user', content: `turn ${r}: ${words(random, 30)}` }] }));
    const repeated: number[] = [];
    turns.forEach((turn, r) => {
      const us = timeUs(() => warmCounter.countChatPrompt(MODEL, turn));
      if (r >= 3) repeated.push(us);
    });
    const c0 = median(coldest);
    const c = median(cold);
    const w = median(repeated);
    console.log(`  ${label} conversation (${fmt(JSON.stringify(history).length / 1024, 1)} KB, ${history.length} messages, ${fmt(tokens)} tokens):`);
    console.log(`    first turn                        ${fmt(c).padStart(6)} µs   (${fmt(c0)} µs with gpt-tokenizer's merge cache empty too)`);
    console.log(`    repeated turn (history + 1 new)   ${fmt(w).padStart(6)} µs   → first / repeated ${fmt(c / w, 1)}× (${fmt(c0 / w, 1)}× from empty caches)`);
  }
}

function deltaCounting(runs: number): void {
  const random = prng(9);
  const deltas = Array.from({ length: PIECES }, () => ` ${WORDS[Math.floor(random() * WORDS.length)] as string}`);
  let perDelta = 0;
  let naiveFinal = 0;
  const cold: number[] = [];
  const warm: number[] = [];
  const naive: number[] = [];
  const countAll = (counter: ReturnType<typeof createTokenCounter>) => () => {
    perDelta = 0;
    for (const d of deltas) perDelta += counter.countText(MODEL, d);
  };
  for (let r = 0; r < runs + 2; r++) {
    const counter = createTokenCounter();
    const a = timeUs(countAll(counter)); // a new counter: its short-text cache is empty
    const b = timeUs(countAll(counter)); // the same deltas again, as the next stream brings its common words back
    const c = timeUs(() => {
      let text = '';
      for (const d of deltas) {
        text += d;
        naiveFinal = counter.countText(MODEL, text);
      }
    });
    if (r >= 2) {
      cold.push(a);
      warm.push(b);
      naive.push(c);
    }
  }
  const a = median(cold);
  const b = median(warm);
  const c = median(naive);
  console.log(`\nstream delta counting, ${PIECES} deltas (countText; median of ${runs} runs):`);
  console.log(`  one delta at a time, cache empty     ${fmt(a)} µs  (${fmt(a / PIECES, 2)} µs per delta; ${perDelta} tokens)`);
  console.log(`  one delta at a time, cache warm      ${fmt(b)} µs  (${fmt(b / PIECES, 2)} µs per delta)`);
  console.log(`  re-encoding the text at every delta  ${fmt(c)} µs  (${fmt(c / PIECES, 2)} µs per delta; ${naiveFinal} tokens at the end)`);
  console.log(`  naive / one at a time: ${fmt(c / a, 1)}× (cache empty), ${fmt(c / b, 1)}× (cache warm)`);
}

/** KB and MB as the sizes above count them: 1,024 and 1,048,576 bytes. */
const KB = 1024;
const MB = 1024 * KB;

/** `bytes / bytesEach` symbols drawn from `alphabet`, each `bytesEach` bytes long in UTF-8. */
function drawn(random: () => number, alphabet: readonly string[], bytes: number, bytesEach: number): string {
  const out: string[] = [];
  for (let i = 0; i < bytes / bytesEach; i++) out.push(alphabet[Math.floor(random() * alphabet.length)] as string);
  return out.join('');
}

const LOWERCASE = [...'abcdefghijklmnopqrstuvwxyz'];
const BASE64 = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'];
const CJK = Array.from({ length: 3_000 }, (_, i) => String.fromCodePoint(0x4e00 + i));

interface PromptShape {
  label: string;
  /** A prompt of about `bytes` bytes of UTF-8. */
  make: (bytes: number) => string;
  /** Words no cache has seen: every pre-token is merged afresh, the tokenizer's slowest case. */
  novel: boolean;
  /** One long pre-token, which the counter cuts into pieces. */
  cut: boolean;
}

/** The two shapes of the goal: a 1 MB prompt of either is counted in under 50 ms. */
const ORDINARY_WORDS: PromptShape = { label: 'ordinary words', make: (bytes) => words(prng(21), bytes / 5).slice(0, bytes), novel: false, cut: false };
const ONE_CHARACTER: PromptShape = { label: 'one character ("A" × n)', make: (bytes) => 'A'.repeat(bytes), novel: false, cut: true };

/** Prompts of one long pre-token (what stalled counting before they were cut), next to ordinary text. */
const PROMPT_SHAPES: PromptShape[] = [
  ORDINARY_WORDS,
  ONE_CHARACTER,
  { label: 'one emoji repeated', make: (bytes) => '😀'.repeat(bytes / 4), novel: false, cut: true },
  { label: 'spaces', make: (bytes) => `x${' '.repeat(bytes)}x`, novel: false, cut: true },
  {
    label: 'random words of 2-8 letters',
    make: (bytes) => {
      const random = prng(22);
      const out: string[] = [];
      for (let size = 0; size < bytes; size += 6) out.push(drawn(random, LOWERCASE, 2 + Math.floor(random() * 7), 1));
      return out.join(' ').slice(0, bytes);
    },
    novel: true,
    cut: false,
  },
  { label: 'random letters, no space', make: (bytes) => drawn(prng(23), LOWERCASE, bytes, 1), novel: true, cut: true },
  // Short pre-tokens (o200k_base splits at case changes and digits): not cut.
  { label: 'base64 (a pasted data URL)', make: (bytes) => `data:image/png;base64,${drawn(prng(24), BASE64, bytes, 1)}`, novel: true, cut: false },
  { label: 'CJK, no punctuation', make: (bytes) => drawn(prng(25), CJK, bytes, 3), novel: true, cut: true },
];

/** The runs of a novel shape: each 1 MB of it takes seconds. */
const NOVEL_RUNS_MAX = 3;

function promptShapes(runs: number): void {
  const sizes = [100 * KB, 300 * KB, MB];
  const sizeLabels = ['100 KB', '300 KB', '1 MB'];
  const novelRuns = Math.min(runs, NOVEL_RUNS_MAX);
  console.log(
    `\nprompt counting by shape, ${MODEL} (countChatPrompt of one user message; a new counter and gpt-tokenizer's merge cache emptied\n` +
      `before each run; median of ${runs} runs, ${novelRuns} for the novel-text shapes; when linear, 1 MB takes 10.24× the time of 100 KB):`,
  );
  console.log(`  ${'shape'.padEnd(30)}${sizeLabels.map((label) => label.padStart(11)).join('')}   ms per MB at each size   1 MB / 100 KB   tokens at 1 MB`);
  const atMb = new Map<PromptShape, number>();
  for (const shape of PROMPT_SHAPES) {
    let tokens = 0; // of the last size, 1 MB
    const times = sizes.map((bytes) => {
      const body = { model: MODEL, messages: [{ role: 'user', content: shape.make(bytes) }] };
      const samples: number[] = [];
      // One run more, not counted, warms the JIT up (not for novel text: it would add seconds).
      for (let r = shape.novel ? 0 : -1; r < (shape.novel ? novelRuns : runs); r++) {
        o200k.clearMergeCache();
        const counter = createTokenCounter();
        const ms = timeUs(() => (tokens = counter.countChatPrompt(MODEL, body))) / 1000;
        if (r >= 0) samples.push(ms);
      }
      return median(samples);
    });
    const perMb = times.map((ms, i) => fmt(ms / ((sizes[i] as number) / MB))).join(' / ');
    const [first, , last] = times as [number, number, number];
    atMb.set(shape, last);
    console.log(
      `  ${shape.label.padEnd(30)}${times.map((ms) => `${fmt(ms, ms < 100 ? 1 : 0)} ms`.padStart(11)).join('')}   ${perMb.padEnd(22)}   ${`${fmt(last / first, 1)}×`.padEnd(13)}   ${fmt(tokens)}`,
    );
  }
  const single = atMb.get(ONE_CHARACTER) ?? NaN;
  const ordinary = atMb.get(ORDINARY_WORDS) ?? NaN;
  const verdict = (ms: number) => (ms < 50 ? 'met' : 'MISSED');
  console.log(`  1 MB of one character: ${fmt(single, 1)} ms (goal < 50 ms: ${verdict(single)}); 1 MB of ordinary words: ${fmt(ordinary, 1)} ms (goal < 50 ms: ${verdict(ordinary)})`);
  // What the tokenizer alone takes on the ordinary text (it is never cut), to tell its share from ours.
  const ordinaryText = ORDINARY_WORDS.make(MB);
  const plain = { disallowedSpecial: new Set<string>() };
  const alone: number[] = [];
  for (let r = -1; r < runs; r++) {
    o200k.clearMergeCache();
    const ms = timeUs(() => o200k.countTokens(ordinaryText, plain)) / 1000;
    if (r >= 0) alone.push(ms);
  }
  console.log(`  gpt-tokenizer's countTokens alone on the 1 MB of ordinary words: ${fmt(median(alone), 1)} ms`);
  // A server that has counted English before: gpt-tokenizer's merge cache warm, this message new.
  const body = { model: MODEL, messages: [{ role: 'user', content: ordinaryText }] };
  const warm: number[] = [];
  for (let r = -1; r < runs; r++) {
    const counter = createTokenCounter();
    const ms = timeUs(() => counter.countChatPrompt(MODEL, body)) / 1000;
    if (r >= 0) warm.push(ms);
  }
  console.log(`  the same 1 MB with gpt-tokenizer's merge cache warm (a new message to a server that has counted English before): ${fmt(median(warm), 1)} ms`);
}

/**
 * What a large prompt costs the event loop: countPrompt counts in place only what is cheap and hands
 * the rest to the counting thread, so the loop spends the attempt and the hand-over, not the count.
 */
async function eventLoopShare(runs: number): Promise<void> {
  console.log('\nlarge prompts on the event loop (countPrompt: in place when cheap, else on the counting thread; median of runs):');
  for (const shape of [ORDINARY_WORDS, ...PROMPT_SHAPES.filter((s) => s.novel).slice(0, 1)]) {
    const text = shape.make(MB);
    const onLoop: number[] = [];
    const whole: number[] = [];
    const count = shape.novel ? Math.min(runs, NOVEL_RUNS_MAX) : runs;
    for (let r = -1; r < count; r++) {
      // A message of its own each run: the counting thread's cache must not know it already.
      const job = { kind: 'chat' as const, model: MODEL, body: { model: MODEL, messages: [{ role: 'user', content: `${r} ${text}` }] } };
      const started = performance.now();
      const counted = countPrompt(createTokenCounter(), job);
      const returned = performance.now();
      await counted;
      if (r >= 0) {
        onLoop.push(returned - started);
        whole.push(performance.now() - started);
      }
    }
    console.log(`  1 MB of ${shape.label.padEnd(28)} ${fmt(median(onLoop), 1).padStart(6)} ms on the event loop, ${fmt(median(whole), 0).padStart(6)} ms until counted`);
  }
}

/**
 * Why MAX_PRE_TOKEN_CHARS is what it is: the same counting path (countByPieces on the encoder) with
 * other limits, on 300 KB of the shapes that are cut. Longer pieces cost more per byte (merging is
 * quadratic in a pre-token's length), shorter ones more calls and more tokens added at the cuts.
 */
function preTokenLimits(runs: number): void {
  const limits = [32, 64, 128, 256, 512];
  const bytes = 300 * KB;
  const plain = { disallowedSpecial: new Set<string>() };
  const sweepRuns = Math.min(runs, NOVEL_RUNS_MAX);
  console.log(`\ncounting 300 KB by the longest pre-token handed to the encoder (now ${MAX_PRE_TOKEN_CHARS}; median of ${sweepRuns} runs; ms, and tokens counted):`);
  console.log(`  ${'shape'.padEnd(30)}${limits.map((limit) => String(limit).padStart(20)).join('')}`);
  for (const shape of PROMPT_SHAPES.filter((s) => s.cut)) {
    const text = shape.make(bytes);
    const cells = limits.map((limit) => {
      let tokens = 0;
      const samples: number[] = [];
      for (let r = 0; r < sweepRuns; r++) {
        o200k.clearMergeCache();
        samples.push(timeUs(() => (tokens = countByPieces(text, (piece) => o200k.countTokens(piece, plain), limit))) / 1000);
      }
      const ms = median(samples);
      return `${fmt(ms, ms < 100 ? 1 : 0)} ms ${fmt(tokens).padStart(8)}`.padStart(20);
    });
    console.log(`  ${shape.label.padEnd(30)}${cells.join('')}`);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      nonstream: { type: 'string', default: '3000' },
      stream: { type: 'string', default: '600' },
      anthropic: { type: 'string', default: '600' },
      concurrency: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '5' },
      serial: { type: 'string', default: '500' },
      'token-runs': { type: 'string', default: '21' },
      cache: { type: 'string', default: '2000' },
      targets: { type: 'string', default: 'direct,bare,floor,guarded,lobe-quota,streamed' },
    },
  });
  const NONSTREAM = Number(args.nonstream);
  const STREAM = Number(args.stream);
  const ANTHROPIC = Number(args.anthropic);
  const CONCURRENCY = Number(args.concurrency);
  const ROUNDS = Number(args.rounds);
  const SERIAL = Number(args.serial);
  const TOKEN_RUNS = Number(args['token-runs']);
  const CACHE = Number(args.cache);
  const names = args.targets.split(',').map((s) => s.trim()) as TargetName[];
  for (const [name, v] of Object.entries({ NONSTREAM, STREAM, ANTHROPIC, CONCURRENCY, ROUNDS, SERIAL, TOKEN_RUNS, CACHE })) {
    if (!Number.isInteger(v) || v < 0 || (name === 'CONCURRENCY' && v < 1) || (name === 'ROUNDS' && v < 1)) throw new Error(`--${name.toLowerCase()}: bad value ${v}`);
  }
  for (const n of names) if (!(n in TARGET_LABEL)) throw new Error(`--targets: unknown target ${n} (direct, bare, floor, guarded, lobe-quota, streamed)`);

  const started = performance.now();
  console.log(
    `command: npm run bench:proxy -- --nonstream ${NONSTREAM} --stream ${STREAM} --anthropic ${ANTHROPIC} --concurrency ${CONCURRENCY} --rounds ${ROUNDS} --serial ${SERIAL} --token-runs ${TOKEN_RUNS} --cache ${CACHE}` +
      (args.targets === 'direct,bare,floor,guarded,lobe-quota,streamed' ? '' : ` --targets ${args.targets}`),
  );
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`);
  console.log('threads: load generator + fake upstream on the main thread; the proxies (bare, floors, lobe-quota) on a worker thread');
  console.log('"lobe-quota, streamed up": lobe-quota with proxy.streamWholeAnswers (a whole answer asked of the upstream as a stream, metered and assembled)');
  console.log(
    `lobe-quota: 1 user key, ${BUDGETS.length} budgets (user month tokens, global month $), SQLite in a temp dir; model ${MODEL}` +
      ` (and ${ANTHROPIC_MODEL} through an api: 'anthropic' upstream on the same fake); answers of ${PIECES} content pieces\n`,
  );

  const fake = await startFakeUpstream();
  const proxy = new ProxyThread({ fakeOrigin: fake.origin });
  const ready = await proxy.next();
  if (ready.type !== 'ready') throw new Error(`proxy thread: expected ready, got ${ready.type}`);
  const origins: Record<TargetName, string> = { direct: fake.origin, bare: ready.bare, floor: ready.floor, guarded: ready.guarded, 'lobe-quota': ready.lobeQuota, streamed: ready.streamed };
  const makeTargets = (connections: number): Target[] =>
    names.map((name) => ({ name, pool: new Pool(origins[name], { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 }), proxied: name !== 'direct' }));

  let targets = makeTargets(CONCURRENCY);
  let openAiStreams: Map<TargetName, Figures> | null = null;
  if (NONSTREAM > 0) {
    const figures = await measure(targets, proxy, 'nonstream', ready.key, NONSTREAM, CONCURRENCY, ROUNDS);
    printTable(`non-stream chat completions, ${CONCURRENCY} connections (median of ${ROUNDS} rounds of ${fmt(NONSTREAM)} requests, after 1 warm-up round):`, figures, true);
    printVerdict(figures, true);
  }
  if (STREAM > 0) {
    const figures = await measure(targets, proxy, 'stream', ready.key, STREAM, CONCURRENCY, ROUNDS);
    printTable(
      `\n${PIECES}-chunk streams, ${CONCURRENCY} connections (median of ${ROUNDS} rounds of ${fmt(STREAM)} streams, after 1 warm-up round; latency = time to the whole body):`,
      figures,
      true,
    );
    printVerdict(figures, true);
    openAiStreams = figures;
  }
  if (ANTHROPIC > 0) {
    const figures = await measure(targets, proxy, 'anthropic', ready.key, ANTHROPIC, CONCURRENCY, ROUNDS);
    printTable(
      `\nAnthropic stream: ${PIECES}-delta Messages streams (POST ${MESSAGES_PATH}, ${ANTHROPIC_MODEL}), ${CONCURRENCY} connections (median of ${ROUNDS} rounds of ${fmt(ANTHROPIC)} streams,\n` +
        'after 1 warm-up round; latency = time to the whole body):',
      figures,
      true,
    );
    printVerdict(figures, true);
    if (openAiStreams) printAgainstOpenAi(figures, openAiStreams);
  }
  await Promise.all(targets.map((t) => t.pool.close()));

  if (SERIAL > 0) {
    // One request at a time: latency without queueing, what a single user sees.
    targets = makeTargets(1);
    const nonstream = await measure(targets, proxy, 'nonstream', ready.key, SERIAL, 1, ROUNDS);
    printTable(`\nnon-stream, 1 connection, no queueing (median of ${ROUNDS} rounds of ${fmt(SERIAL)} sequential requests):`, nonstream, false);
    printVerdict(nonstream, false);
    const streamCount = Math.max(1, Math.round(SERIAL / 5));
    const stream = await measure(targets, proxy, 'stream', ready.key, streamCount, 1, ROUNDS);
    printTable(`\n${PIECES}-chunk streams, 1 connection, no queueing (median of ${ROUNDS} rounds of ${fmt(streamCount)} sequential streams):`, stream, false);
    printVerdict(stream, false);
    await Promise.all(targets.map((t) => t.pool.close()));
  }

  if (CACHE > 0) {
    const pool = new Pool(ready.cached, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const whole = await measureCache(pool, proxy, 'nonstream', ready.key, CACHE, CONCURRENCY, ROUNDS);
    printCache(
      `\nresponse cache (cache.enabled, temperature 0), non-stream, ${CONCURRENCY} connections (median of ${ROUNDS} rounds of ${fmt(CACHE)} misses, each a new question,\n` +
        `then ${fmt(CACHE)} hits of one stored answer, after 1 warm-up round):`,
      whole,
    );
    const streamCount = Math.max(1, Math.round(CACHE / 5));
    const streams = await measureCache(pool, proxy, 'stream', ready.key, streamCount, CONCURRENCY, ROUNDS);
    printCache(`\nresponse cache, ${PIECES}-chunk streams, ${CONCURRENCY} connections (median of ${ROUNDS} rounds of ${fmt(streamCount)} misses, then ${fmt(streamCount)} hits):`, streams);
    await pool.close();
  }

  const { ledger, guarded } = await proxy.close();
  await fake.close();
  // Each measure() sends one checked request, then (1 warm-up + ROUNDS) rounds of `count`.
  const sent = (count: number) => (count > 0 ? 1 + (ROUNDS + 1) * count : 0);
  if (names.includes('lobe-quota') && NONSTREAM + STREAM + ANTHROPIC + SERIAL > 0) {
    const expected = sent(NONSTREAM) + sent(STREAM) + sent(ANTHROPIC) + (SERIAL > 0 ? sent(SERIAL) + sent(Math.max(1, Math.round(SERIAL / 5))) : 0);
    const outcomes = Object.entries(ledger.outcomes).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    const sources = Object.entries(ledger.sources).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    console.log(
      `\nlobe-quota ledger after the run: ${fmt(ledger.rows)} entries for ${fmt(expected)} requests sent (${outcomes}; usage from ${sources}), ${fmt(ledger.outputTokens)} output tokens`,
    );
  }
  if (names.includes('guarded') && NONSTREAM + SERIAL > 0) {
    // Whole answers only: the non-stream runs, loaded and one at a time.
    const expected = sent(NONSTREAM) + sent(SERIAL);
    console.log(
      `floor + guarantees after the run: ${fmt(guarded.entries)} entries for ${fmt(expected)} requests sent (${fmt(guarded.requestsCounted)} in its request counter), ` +
        `${fmt(guarded.holdsCopied)} holds copied for recovery and ${fmt(guarded.holdsLeft)} left, budget counters ${guarded.countersAgree ? 'equal to' : 'NOT equal to'} the ledger`,
    );
    const whole = guarded.entries === expected && guarded.requestsCounted === expected && guarded.holdsLeft === 0 && guarded.countersAgree;
    if (!whole) process.exitCode = 1;
  }

  if (TOKEN_RUNS > 0) {
    promptCounting(TOKEN_RUNS);
    deltaCounting(TOKEN_RUNS);
    promptShapes(TOKEN_RUNS);
    await eventLoopShare(TOKEN_RUNS);
    preTokenLimits(TOKEN_RUNS);
  }
  console.log(`\n(whole run: ${fmt((performance.now() - started) / 1000, 0)} s)`);
}

if (isMainThread) await main();
else await proxyThread(workerData as WorkerInput);
