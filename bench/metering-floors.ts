import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { bearerToken, hashSecret, USER_KEY_PREFIX } from '../server/auth/secrets.js';
import type { DefaultBudget } from '../server/config/schema.js';
import { quickChatRequest } from '../server/proxy/dialects/openai-chat-check.js';
import { countPrompt } from '../server/proxy/prompt-count.js';
import { createPriceBook, usageCostMicros } from '../server/proxy/pricing.js';
import { newRequestId } from '../server/proxy/request-id.js';
import { createTokenCounter } from '../server/proxy/token-count.js';
import { defaultBudgetsFor, type Budget } from '../server/quota/budgets.js';
import { formatScope, type Scope } from '../server/quota/scope.js';
import { bucketAt, type Bucket } from '../server/quota/window.js';
import { migrate } from '../server/store/sqlite/migrations.js';
import { BoundedMemo } from '../server/util/bounded-memo.js';
import { listenLocally, responseHeaders, type LocalServer } from './local-server.js';

/*
 * Two references for lobe-quota's proxy in bench:proxy, between the bare pass-through and
 * lobe-quota itself: what any metering proxy must do (the floor), and that plus the least work each
 * of lobe-quota's guarantees needs (the guarded floor). Whole answers of OpenAI's chat API only.
 */

/** A ledger file as lobe-quota opens its own: WAL, synchronous NORMAL, lobe-quota's schema. */
function openLedger(dbFile: string): Database.Database {
  const db = new Database(dbFile);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  migrate(db);
  return db;
}

const UPSTREAM_HEADERS = { authorization: 'Bearer sk-bench-upstream', 'content-type': 'application/json' };

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/**
 * The least a *metering* proxy must do for a whole answer, as a reference between the bare
 * pass-through and lobe-quota: the bare pass-through, plus parsing the request's JSON, parsing the
 * answer's JSON for its usage, and one durable ledger row per request (lobe-quota's own ledger
 * table and indexes, group-committed per event-loop turn) before the answer goes back. No keys,
 * budgets, counting, headers or framework. Whole answers only: the stream tables leave it out.
 */
export async function startFloor(upstreamOrigin: string, dbFile: string): Promise<LocalServer> {
  const pool = new Pool(upstreamOrigin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const db = openLedger(dbFile);
  db.prepare("INSERT INTO users (id, name, project_id, created_at) VALUES ('floor', 'Floor', NULL, 0)").run();
  const insert = db.prepare(
    `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
       reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags)
     VALUES (?, ?, 'floor', NULL, 'floor', ?, ?, ?, 0, 0, 0, 'upstream', 'ok', 0, NULL, NULL)`,
  );
  type Row = { model: string; input: number; output: number; done: () => void };
  let queue: Row[] = [];
  const commit = db.transaction((rows: Row[]) => {
    for (const row of rows) insert.run(newRequestId(), Date.now(), row.model, row.input, row.output);
  });
  const settle = (row: Omit<Row, 'done'>) =>
    new Promise<void>((done) => {
      queue.push({ ...row, done });
      if (queue.length > 1) return;
      setImmediate(() => {
        const rows = queue;
        queue = [];
        commit(rows);
        for (const r of rows) r.done();
      });
    });
  const server = createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await collect(req);
      const { model } = JSON.parse(body.toString('utf8')) as { model: string };
      const up = await pool.request({ path: req.url ?? '/', method: 'POST', headers: UPSTREAM_HEADERS, body });
      const answer = await collect(up.body);
      const { usage } = JSON.parse(answer.toString('utf8')) as { usage: { prompt_tokens: number; completion_tokens: number } };
      await settle({ model, input: usage.prompt_tokens, output: usage.completion_tokens });
      res.writeHead(up.statusCode, responseHeaders(up.headers));
      res.end(answer);
    })().catch(() => res.destroy());
  });
  return listenLocally(server, async () => {
    await pool.close();
    db.close();
  });
}

/** One of the guarded floor's budgets (the bench's defaults, resolved as lobe-quota resolves them), kept in memory. */
interface BudgetInMemory {
  budget: Budget;
  bucket: Bucket;
  /** What the bucket's counter row holds, and what is held by live requests. */
  usedTokens: number;
  usedMicros: number;
  reservedTokens: number;
  reservedMicros: number;
}

interface GuardedHold {
  id: string;
  quote: { tokens: number; micros: number };
  outputTokens: number;
  createdAt: number;
  /** The PendingCharge a recovery would settle it with, serialised when it is taken. */
  pending: string;
  /** Its row is in the file (committed). */
  written: boolean;
  settling: boolean;
}

interface GuardedSettle {
  hold: GuardedHold;
  model: string;
  usage: { input: number; output: number; cached: number; reasoning: number };
  charged: { tokens: number; micros: number };
  latencyMs: number;
  done: () => void;
}

const HOLD_TTL_MS = 10 * 60_000;
/** The config's default alert thresholds, for budgets that set none. */
const THRESHOLDS = [50, 80, 90, 95, 100];
/** The guarded floor's one user and key: the scopes its budgets apply to. */
const SCOPES: Scope[] = [{ kind: 'user', id: 'guarded' }, { kind: 'key', id: 'key_guarded' }, { kind: 'global' }];
/** Buckets of the added-latency histogram, in seconds (a histogram's observation is a count in one). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/**
 * The floor plus the least work each of lobe-quota's guarantees needs for a whole answer, written
 * straight through in one function: no framework, dialects, routing, failover, rate limits, caches
 * or response cache. Its distance from the floor is what the guarantees themselves cost; lobe-quota's
 * distance from it is what its own machinery costs. Per request:
 *
 * - the client's key, hashed (a memo of recent keys, as lobe-quota keeps) and looked up;
 * - the body checked by lobe-quota's own check, whose copy is what goes upstream, serialised again;
 * - the prompt counted by lobe-quota's own counter, and the worst case priced, for admission;
 * - admission against both budgets in memory, the amounts held until the settle;
 * - the hold copied to the file in the next commit (for recovery after a crash) unless already
 *   settling, and its row deleted in the settle's transaction;
 * - the answer's usage priced; one ledger row with all its columns, each budget's counter row and
 *   any alert crossed written in the group commit, before the answer goes back;
 * - counters and an added-latency histogram, as plain numbers a scrape would read;
 * - the binding budget's x-quota-* headers on the answer.
 */
export async function startGuardedFloor(
  upstreamOrigin: string,
  dbFile: string,
  setup: { secret: string; budgets: readonly DefaultBudget[] },
): Promise<LocalServer & { counts: () => GuardedFloorCounts }> {
  const pool = new Pool(upstreamOrigin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const db = openLedger(dbFile);
  db.prepare("INSERT INTO users (id, name, project_id, created_at) VALUES ('guarded', 'Guarded', NULL, 0)").run();
  const keys = new Map([[hashSecret(setup.secret), { userId: 'guarded', keyId: 'key_guarded' }]]);
  const keyHashes = new BoundedMemo<string, string>(10_000);
  const tokens = createTokenCounter();
  const prices = createPriceBook();
  const now0 = Date.now();
  const budgets: BudgetInMemory[] = SCOPES.flatMap((scope) => defaultBudgetsFor(scope, setup.budgets, THRESHOLDS)).map((budget) => ({
    budget,
    bucket: bucketAt(budget.window, now0),
    usedTokens: 0,
    usedMicros: 0,
    reservedTokens: 0,
    reservedMicros: 0,
  }));
  const s = {
    insertHold: db.prepare(
      `INSERT INTO holds (id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, delivered_tokens, updated_at)
       VALUES (?, 'guarded', NULL, 'key_guarded', ?, ?, ?, ?, ?, ?, 0, ?)`,
    ),
    deleteHold: db.prepare('DELETE FROM holds WHERE id = ?'),
    insertEntry: db.prepare(
      `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
         reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens, cache_write_tokens,
         cache_write_1h_tokens, upstream, saved_tokens, saved_micros)
       VALUES (?, ?, 'guarded', NULL, 'key_guarded', ?, ?, ?, ?, ?, ?, 'upstream', 'ok', ?, NULL, NULL, ?, 0, 0, 'fake', 0, 0)
       ON CONFLICT (request_id) DO NOTHING`,
    ),
    storeCounter: db.prepare(
      `INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros) VALUES (?, ?, ?, NULL, ?, ?)
       ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = excluded.tokens, micros = excluded.micros`,
    ),
    insertAlert: db.prepare(
      `INSERT INTO alerts (id, budget_key, scope, window_start, kind, threshold, fired_at, payload)
       VALUES (?, ?, ?, ?, 'threshold', ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
  };
  const tallies = { requests: 0, inputTokens: 0, outputTokens: 0, costMicros: 0, latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) };
  const observeLatency = (seconds: number) => {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    tallies.latency[i] = (tallies.latency[i] as number) + 1;
  };

  let holdsCopied = 0;
  /** Holds taken since the last commit, to copy in the next one. */
  let taken: GuardedHold[] = [];
  let settles: GuardedSettle[] = [];
  let commitScheduled = false;
  const usedPercent = (b: BudgetInMemory, tokens: number, micros: number): number =>
    Math.max(b.budget.limitTokens ? (tokens * 100) / b.budget.limitTokens : 0, b.budget.limitMicros ? (micros * 100) / b.budget.limitMicros : 0);
  const commit = db.transaction((holds: GuardedHold[], batch: GuardedSettle[], at: number) => {
    for (const hold of holds) {
      if (hold.settling) continue;
      holdsCopied += 1;
      s.insertHold.run(hold.id, hold.quote.tokens, hold.quote.micros, hold.outputTokens, hold.createdAt, hold.createdAt + HOLD_TTL_MS, hold.pending, at);
    }
    let addedTokens = 0;
    let addedMicros = 0;
    for (const { hold, model, usage, charged, latencyMs } of batch) {
      if (hold.written) s.deleteHold.run(hold.id);
      s.insertEntry.run(hold.id, at, model, usage.input, usage.output, usage.cached, usage.reasoning, charged.micros, latencyMs, Math.max(0, usage.output - hold.outputTokens));
      addedTokens += charged.tokens;
      addedMicros += charged.micros;
    }
    if (batch.length === 0) return;
    for (const b of budgets) {
      if (b.bucket.end !== null && at >= b.bucket.end) {
        b.bucket = bucketAt(b.budget.window, at);
        b.usedTokens = 0;
        b.usedMicros = 0;
      }
      const before = usedPercent(b, b.usedTokens, b.usedMicros);
      const after = usedPercent(b, b.usedTokens + addedTokens, b.usedMicros + addedMicros);
      const { key, scope, thresholds } = b.budget;
      s.storeCounter.run(key, b.bucket.start, b.bucket.end, b.usedTokens + addedTokens, b.usedMicros + addedMicros);
      for (const threshold of thresholds) {
        if (before < threshold && after >= threshold) {
          s.insertAlert.run(newRequestId(at), key, formatScope(scope), b.bucket.start, threshold, at, JSON.stringify({ budget: key, threshold, usedPercent: after }));
        }
      }
    }
  });
  const flush = () => {
    commitScheduled = false;
    const holds = taken;
    const batch = settles;
    taken = [];
    settles = [];
    commit.immediate(holds, batch, Date.now());
    // Only now, after the commit, does memory change.
    for (const hold of holds) if (!hold.settling) hold.written = true;
    for (const { hold, charged, done } of batch) {
      for (const b of budgets) {
        b.usedTokens += charged.tokens;
        b.usedMicros += charged.micros;
        b.reservedTokens -= hold.quote.tokens;
        b.reservedMicros -= hold.quote.micros;
      }
      done();
    }
  };
  const scheduleCommit = () => {
    if (commitScheduled) return;
    commitScheduled = true;
    setImmediate(flush);
  };
  const settle = (entry: Omit<GuardedSettle, 'done'>) =>
    new Promise<void>((done) => {
      entry.hold.settling = true;
      settles.push({ ...entry, done });
      scheduleCommit();
    });

  const refuse = (res: ServerResponse, status: number, code: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: code, type: 'invalid_request_error', param: null, code } }));
  };
  /** Sets the binding budget's x-quota-* headers on `headers` (the reset's text kept per bucket). */
  const resets = new Map<number, string>();
  const setQuotaHeaders = (headers: Record<string, string | string[]>): void => {
    let binding = budgets[0] as BudgetInMemory;
    let least = Infinity;
    for (const b of budgets) {
      const left = 100 - usedPercent(b, b.usedTokens + b.reservedTokens, b.usedMicros + b.reservedMicros);
      if (left < least) [binding, least] = [b, left];
    }
    const usd = binding.budget.limitTokens === null;
    const limit = usd ? (binding.budget.limitMicros ?? 0) / 1e6 : (binding.budget.limitTokens ?? 0);
    const used = usd ? (binding.usedMicros + binding.reservedMicros) / 1e6 : binding.usedTokens + binding.reservedTokens;
    headers['x-quota-limit'] = String(limit);
    headers['x-quota-remaining'] = String(Math.max(0, limit - used));
    headers['x-quota-unit'] = usd ? 'usd' : 'tokens';
    const end = binding.bucket.end;
    if (end === null) return;
    let reset = resets.get(end);
    if (reset === undefined) resets.set(end, (reset = new Date(end).toISOString()));
    headers['x-quota-reset'] = reset;
  };

  const server = createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const receivedAt = performance.now();
      const token = bearerToken(req.headers.authorization);
      const key = token?.startsWith(USER_KEY_PREFIX) ? keys.get(keyHashes.through(token, hashSecret)) : undefined;
      if (!key) return refuse(res, 401, 'invalid_api_key');
      const body = await collect(req);
      const request = quickChatRequest(JSON.parse(body.toString('utf8')));
      if (!request) return refuse(res, 400, 'invalid_request');
      const { model } = request;
      const promptTokens = await countPrompt(tokens, { kind: 'chat', model, body: request });
      const price = prices.priceOf(model);
      const outputTokens = (request.max_completion_tokens ?? request.max_tokens ?? prices.outputCapOf(model)) * (request.n ?? 1);
      const quote = { tokens: promptTokens + outputTokens, micros: price ? usageCostMicros(price, { inputTokens: promptTokens, cachedTokens: 0, outputTokens }) : 0 };
      for (const b of budgets) {
        if (usedPercent(b, b.usedTokens + b.reservedTokens + quote.tokens, b.usedMicros + b.reservedMicros + quote.micros) > 100) return refuse(res, 429, 'quota_exceeded');
      }
      for (const b of budgets) {
        b.reservedTokens += quote.tokens;
        b.reservedMicros += quote.micros;
      }
      const createdAt = Date.now();
      const pending = JSON.stringify({ model, upstream: 'fake', inputTokens: promptTokens, price, sessionId: null, tags: {} });
      const hold: GuardedHold = { id: newRequestId(createdAt), quote, outputTokens, createdAt, pending, written: false, settling: false };
      taken.push(hold);
      scheduleCommit();
      observeLatency((performance.now() - receivedAt) / 1000);
      const up = await pool.request({ path: req.url ?? '/', method: 'POST', headers: UPSTREAM_HEADERS, body: JSON.stringify(request) });
      const answer = await collect(up.body);
      const { usage } = JSON.parse(answer.toString('utf8')) as { usage: OpenAIUsage };
      const used = {
        input: usage.prompt_tokens,
        output: usage.completion_tokens,
        cached: usage.prompt_tokens_details?.cached_tokens ?? 0,
        reasoning: usage.completion_tokens_details?.reasoning_tokens ?? 0,
      };
      const charged = { tokens: used.input + used.output, micros: price ? usageCostMicros(price, { inputTokens: used.input, cachedTokens: used.cached, outputTokens: used.output }) : 0 };
      await settle({ hold, model, usage: used, charged, latencyMs: Date.now() - createdAt });
      tallies.requests += 1;
      tallies.inputTokens += used.input;
      tallies.outputTokens += used.output;
      tallies.costMicros += charged.micros;
      const headers = responseHeaders(up.headers);
      setQuotaHeaders(headers);
      res.writeHead(up.statusCode, headers);
      res.end(answer);
    })().catch(() => res.destroy());
  });
  const local = await listenLocally(server, async () => {
    await pool.close();
    db.close();
  });
  return { ...local, counts: () => ({ holdsCopied, requestsCounted: tallies.requests }) };
}

/** What the guarded floor counted in memory: the holds it copied to its file, the requests its counters saw. */
export interface GuardedFloorCounts {
  holdsCopied: number;
  requestsCounted: number;
}

/** What the guarded floor left in its file: its entries, any hold row left behind, and whether each budget's counters add up to the ledger. */
export interface GuardedFloorFile {
  entries: number;
  holdsLeft: number;
  countersAgree: boolean;
}

export function readGuardedFloorFile(dbFile: string): GuardedFloorFile {
  const db = new Database(dbFile, { readonly: true });
  try {
    const ledger = db.prepare('SELECT count(*) AS n, coalesce(sum(input_tokens + output_tokens), 0) AS tokens, coalesce(sum(cost_micros), 0) AS micros FROM ledger').get() as { n: number; tokens: number; micros: number };
    const counters = db.prepare('SELECT budget_key, sum(tokens) AS tokens, sum(micros) AS micros FROM usage_counters GROUP BY budget_key').all() as { tokens: number; micros: number }[];
    const holdsLeft = (db.prepare('SELECT count(*) AS n FROM holds').get() as { n: number }).n;
    const countersAgree = counters.length > 0 && counters.every((c) => c.tokens === ledger.tokens && c.micros === ledger.micros);
    return { entries: ledger.n, holdsLeft, countersAgree };
  } finally {
    db.close();
  }
}

interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number };
}
