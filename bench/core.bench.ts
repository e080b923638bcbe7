// `npm run bench`: the quota core's figures. Prints medians of several rounds and the ratios that
// matter on a noisy 2-core machine: reserve+settle pairs per second in-process, the same for
// stream-shaped requests (reserve, extend, settle, each in a later turn of the event loop, as the
// proxy makes them), both with SQLite's synchronous = NORMAL (the default) and FULL
// (database.sqliteSynchronous), and /quota latency with an empty ledger and with 1M ledger rows (it must not
// grow with the ledger), beside a /health baseline served the same way.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { createApp } from '../server/app.js';
import { hashSecret } from '../server/auth/secrets.js';
import { systemClock } from '../server/clock.js';
import { loadConfig } from '../server/config/load.js';
import { Upstreams } from '../server/proxy/upstreams.js';
import type { RequestSubject } from '../server/quota/scope.js';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';
import type { PendingCharge, Store, Usage } from '../server/store/types.js';
import { BENCH_BUDGETS, PROJECTS, seedDirectory, USERS } from './bench-fixture.js';
import { fmt, httpLatency, latencyLine, latencyOf, median, type Latency } from './figures.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    pairs: { type: 'string', default: '30000' },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
  },
});
const ROWS = Number(args.rows);
const PAIRS = Number(args.pairs);
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);


const DEFAULTS = BENCH_BUDGETS;

/** What the proxy keeps with each hold for recovery after a crash: gpt-4o-mini's price. */
const PENDING: PendingCharge = {
  model: 'gpt-4o-mini',
  inputTokens: 500,
  price: { inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 75_000, outputMicrosPerMillion: 600_000 },
  sessionId: null,
  tags: {},
};

const QUOTE = { tokens: 500, micros: 75, output: { wantTokens: 1_000, minTokens: 1, microsPerMillion: 600_000 } };

const USAGE: Usage = { model: 'gpt-4o-mini', inputTokens: 500, outputTokens: 200, cachedTokens: 0, reasoningTokens: 0, costMicros: 195, source: 'upstream', outcome: 'ok', latencyMs: 900, sessionId: null, tags: {} };

/**
 * Hold ids, unique across the whole run: an id used twice on one fixture settles as a duplicate,
 * which writes nothing, and would make a rate look several times higher than it is.
 */
let holdSeq = 0;

/** One turn of the event loop: where the proxy waits for the upstream between two store calls. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Fixture {
  store: SqliteStore;
  subjects: RequestSubject[];
  secrets: string[];
  dir: string;
}

/** A database with users, projects, keys and `rows` ledger entries spread over the last 60 days. */
async function fixture(rows: number, synchronous: 'normal' | 'full' = 'normal'): Promise<Fixture> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-bench-'));
  const file = path.join(dir, 'lobe-quota.db');
  const open = () => SqliteStore.open({ file, defaultBudgets: DEFAULTS, defaultThresholds: [50, 80, 90, 95, 100], synchronous });
  let store = open();
  const now = Date.now();
  const { subjects, secrets } = await seedDirectory(store, now);
  await store.close();

  if (rows > 0) {
    // Bulk-load the ledger in one statement; the store rebuilds its counters from it on first use.
    const db = new Database(file);
    const span = 60 * 86_400_000;
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
       INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens,
         cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
       SELECT 'seed-' || i, ? - (i * ?) / ?, 'u' || (i % ${USERS}), 'p' || ((i % ${USERS}) % ${PROJECTS}), 'key_u' || (i % ${USERS}),
         'gpt-4o-mini', 400 + i % 300, 150 + i % 200, 0, 0, 90 + i % 50, 'upstream', 'ok', 800
       FROM n`,
    ).run(rows, now, span, rows);
    db.close();
  }
  store = open();
  return { store, subjects, secrets, dir };
}

/** A rate, and the process's CPU time per request (user + system): steadier than the rate on a shared machine. */
interface Rate {
  perSecond: number;
  cpuMicros: number;
}

const rateText = (r: Rate) => `${fmt(r.perSecond)} /s   ${fmt(r.cpuMicros, 1)} µs CPU each`;

/**
 * Requests per second with `concurrency` in flight, as a proxy under load has; each lane runs
 * `request` one after another, and each request awaits its durable settle before the next starts.
 */
async function requestsPerSecond(
  f: Fixture,
  concurrency: number,
  request: (subject: RequestSubject, holdId: string) => Promise<void>,
  perRound = PAIRS,
): Promise<Rate> {
  const rates: number[] = [];
  const cpu: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const perLane = Math.ceil(perRound / concurrency);
    const lane = async (laneIndex: number) => {
      for (let i = 0; i < perLane; i++) await request(f.subjects[(laneIndex * 7 + i) % f.subjects.length] as RequestSubject, `bench-${holdSeq++}`);
    };
    const cpuBefore = process.cpuUsage();
    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpuBefore);
    rates.push((perLane * concurrency) / seconds);
    cpu.push((used.user + used.system) / (perLane * concurrency));
  }
  return { perSecond: median(rates), cpuMicros: median(cpu) };
}

/** A reservation and its settlement, back to back: the store calls of a request, without the upstream. */
const reserveSettlePairs = (f: Fixture, concurrency: number, perRound = PAIRS) =>
  requestsPerSecond(
    f,
    concurrency,
    async (subject, holdId) => {
      const now = Date.now();
      const held = await f.store.reserve({ holdId, subject, quote: QUOTE, now, ttlMs: 600_000, pending: PENDING });
      if (!held.ok) throw new Error('bench budget refused a request');
      await f.store.settle({ holdId, subject, usage: USAGE, now });
    },
    perRound,
  );

/**
 * A stream's store calls: a reservation, one lease extension with the delivered count, and the
 * settlement, each a turn of the event loop after the last (where the proxy waits for the upstream),
 * so the hold lives across commits as a real stream's does.
 */
const streamShaped = (f: Fixture, concurrency: number) =>
  requestsPerSecond(f, concurrency, async (subject, holdId) => {
    const store: Store = f.store;
    const held = await store.reserve({ holdId, subject, quote: QUOTE, now: Date.now(), ttlMs: 600_000, pending: PENDING });
    if (!held.ok) throw new Error('bench budget refused a request');
    await nextTurn();
    const grown = await store.extend(holdId, { tokens: 256, micros: 154 }, Date.now(), 600_000, 200);
    if (!grown.ok) throw new Error('bench budget refused an extension');
    await nextTurn();
    await store.settle({ holdId, subject, usage: USAGE, now: Date.now() });
  });

interface SyncFigures {
  one: Rate;
  many: Rate;
  streams: Rate;
}

/**
 * NORMAL against FULL on two new databases given the same calls, alternating, so that neither has a
 * bigger ledger (or a later, busier moment of the machine) than the other. One at a time, a tenth
 * as many per round: with FULL each waits for a sync.
 */
async function synchronousFigures(): Promise<{ normal: SyncFigures; full: SyncFigures; fewPairs: number }> {
  const fewPairs = Math.ceil(PAIRS / 10);
  const fixtures = { normal: await fixture(0, 'normal'), full: await fixture(0, 'full') };
  const one = { normal: await reserveSettlePairs(fixtures.normal, 1, fewPairs), full: await reserveSettlePairs(fixtures.full, 1, fewPairs) };
  const many = { normal: await reserveSettlePairs(fixtures.normal, CONCURRENCY), full: await reserveSettlePairs(fixtures.full, CONCURRENCY) };
  const streams = { normal: await streamShaped(fixtures.normal, CONCURRENCY), full: await streamShaped(fixtures.full, CONCURRENCY) };
  for (const f of Object.values(fixtures)) {
    await f.store.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
  return {
    normal: { one: one.normal, many: many.normal, streams: streams.normal },
    full: { one: one.full, many: many.full, streams: streams.full },
    fewPairs,
  };
}

/** The /quota handler alone (no socket), to separate our work from HTTP's. */
const inProcessLatency = (app: ReturnType<typeof createApp>, token: string): Promise<Latency> =>
  latencyOf(
    async () => {
      await (await app.request('/quota', { headers: { authorization: `Bearer ${token}` } })).text();
    },
    ROUNDS,
    REQUESTS,
  );

async function quotaFigures(f: Fixture) {
  const loaded = loadConfig({ env: {}, cwd: f.dir });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  const config = { ...loaded.config, defaultBudgets: DEFAULTS };
  const upstreams = Upstreams.fromConfig(config);
  const app = createApp({ store: f.store, config, clock: systemClock, adminTokenHash: hashSecret('bench-admin-token-000000'), upstreams });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = f.secrets[0] as string;
  const inProcess = await inProcessLatency(app, token);
  const health = await httpLatency(`${base}/health`, token, ROUNDS, REQUESTS);
  const quota = await httpLatency(`${base}/quota`, token, ROUNDS, REQUESTS);
  await new Promise((resolve) => server.close(resolve));
  await upstreams.close();
  return { inProcess, health, quota };
}

const line = latencyLine;

async function main() {
  console.log(`command: npm run bench:core -- --rows ${ROWS} --pairs ${PAIRS} --requests ${REQUESTS} --rounds ${ROUNDS} --concurrency ${CONCURRENCY}`);
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`);
  console.log(`budgets per request: 4 (key rolling 5 h, user month, project day in $, global month in $); ${USERS} users\n`);

  const empty = await fixture(0);
  const emptyQuota = await quotaFigures(empty);
  const emptyPairs = await reserveSettlePairs(empty, 1);
  const emptyPairsConcurrent = await reserveSettlePairs(empty, CONCURRENCY);
  const emptyStreams = await streamShaped(empty, CONCURRENCY);
  const sync = await synchronousFigures();

  const t = Date.now();
  const big = await fixture(ROWS);
  const loadSeconds = (Date.now() - t) / 1000;
  const bigQuota = await quotaFigures(big);
  const bigPairs = await reserveSettlePairs(big, 1);
  const bigPairsConcurrent = await reserveSettlePairs(big, CONCURRENCY);

  const times = (x: Rate, of: Rate) => fmt(x.perSecond / of.perSecond, 2);
  console.log(`reserve+settle pairs per second (in-process, each settle durable; median of ${ROUNDS} rounds of ${fmt(PAIRS)}):`);
  console.log(`  empty ledger, one at a time                 ${rateText(emptyPairs)}`);
  console.log(`  empty ledger, ${CONCURRENCY} in flight                  ${rateText(emptyPairsConcurrent)}`);
  console.log(`  ${fmt(ROWS)} ledger rows, one at a time     ${rateText(bigPairs)}   (${times(bigPairs, emptyPairs)}× of empty)`);
  console.log(`  ${fmt(ROWS)} ledger rows, ${CONCURRENCY} in flight          ${rateText(bigPairsConcurrent)}   (${times(bigPairsConcurrent, emptyPairsConcurrent)}× of empty; target ≥ 30,000 /s)`);
  console.log(`\nstream-shaped requests per second (reserve, a turn, extend, a turn, settle; median of ${ROUNDS} rounds of ${fmt(PAIRS)}):`);
  console.log(`  empty ledger, ${CONCURRENCY} in flight                  ${rateText(emptyStreams)}`);
  console.log(
    `\nsynchronous = NORMAL (the default) against FULL (database.sqliteSynchronous: "full"): two new databases, the same calls on each in turn (rounds of ${fmt(sync.fewPairs)} one at a time, else ${fmt(PAIRS)}):`,
  );
  for (const [name, pick] of [
    ['reserve+settle, one at a time', (r: SyncFigures) => r.one],
    [`reserve+settle, ${CONCURRENCY} in flight`, (r: SyncFigures) => r.many],
    [`stream-shaped, ${CONCURRENCY} in flight`, (r: SyncFigures) => r.streams],
  ] as const) {
    console.log(`  ${name.padEnd(32)} normal ${rateText(pick(sync.normal))}   full ${rateText(pick(sync.full))}   (${times(pick(sync.full), pick(sync.normal))}×)`);
  }
  console.log(`\nGET /quota latency with a user key (median of ${ROUNDS} rounds of ${fmt(REQUESTS)} sequential requests):`);
  console.log(line('empty ledger, handler in-process', emptyQuota.inProcess));
  console.log(line(`${fmt(ROWS)} rows, handler in-process`, bigQuota.inProcess));
  console.log(line('empty ledger, HTTP /health baseline', emptyQuota.health));
  console.log(line('empty ledger, HTTP /quota', emptyQuota.quota));
  console.log(line(`${fmt(ROWS)} rows, HTTP /health baseline`, bigQuota.health));
  console.log(line(`${fmt(ROWS)} rows, HTTP /quota`, bigQuota.quota));
  console.log(
    `  /quota at ${fmt(ROWS)} rows vs empty: p50 ${fmt(bigQuota.quota.p50 / emptyQuota.quota.p50, 2)}×, p99 ${fmt(bigQuota.quota.p99 / emptyQuota.quota.p99, 2)}× (target: p99 < 1 ms)`,
  );
  console.log(`\n(ledger of ${fmt(ROWS)} rows loaded in ${fmt(loadSeconds, 1)} s)`);

  for (const f of [empty, big]) {
    await f.store.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
}

await main();
