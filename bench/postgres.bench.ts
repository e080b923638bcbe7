// `npm run bench:postgres`: the PostgreSQL store's figures, beside core.bench.ts's SQLite ones.
// Reserve+settle pairs per second (one at a time, beside two floors of bare statements,
// postgres-floor.ts: the same writes, and the same reads and writes; and with 64 in flight over
// one instance and over two), and
// GET /quota latency, on a schema of its own that is dropped afterwards. Needs the
// PostgreSQL of DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/test).
//
// `--before DIR` runs every measurement on another build too (DIR: a checkout of an earlier commit
// with `npm run build` done), in a schema of its own, the two taking turns, so that before and
// after come from the same run on the same machine.
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import pg from 'pg';
import { createApp } from '../server/app.js';
import { hashSecret } from '../server/auth/secrets.js';
import { systemClock } from '../server/clock.js';
import { loadConfig } from '../server/config/load.js';
import type { DefaultBudget } from '../server/config/schema.js';
import { Upstreams } from '../server/proxy/upstreams.js';
import type { RequestSubject } from '../server/quota/scope.js';
import { PostgresStore } from '../server/store/postgres/postgres-store.js';
import { quoteIdent } from '../server/store/postgres/pg-pool.js';
import { BENCH_BUDGETS, PROJECTS, seedDirectory, USERS } from './bench-fixture.js';
import { fmt, httpLatency, latencyLine, latencyOf, median, timedRounds, type RatedRounds } from './figures.js';
import { openFloors } from './postgres-floor.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    pairs: { type: 'string', default: '4000' },
    requests: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    before: { type: 'string' },
  },
});
const ROWS = Number(args.rows);
const PAIRS = Number(args.pairs);
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
const URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';


/** core.bench.ts's budgets: four per request, one of them global (every admission locks its row). */
const WITH_GLOBAL = BENCH_BUDGETS;
/** The same without the global budget: requests of different projects lock nothing in common. */
const WITHOUT_GLOBAL = WITH_GLOBAL.filter((b) => b.scope !== 'global');

/** The code under measurement: this checkout's, or the earlier one of `--before`. */
interface Build {
  label: string;
  schema: string;
  PostgresStore: typeof PostgresStore;
  createApp: typeof createApp;
  loadConfig: typeof loadConfig;
  Upstreams: typeof Upstreams;
}

const thisBuild: Build = { label: 'after', schema: `lq_bench_${process.pid}`, PostgresStore, createApp, loadConfig, Upstreams };

/** The same modules from another checkout's dist/ (its own versions of everything they import). */
async function buildAt(dir: string): Promise<Build> {
  const load = async <T>(file: string): Promise<T> => (await import(pathToFileURL(path.resolve(dir, 'dist', file)).href)) as T;
  return {
    label: 'before',
    schema: `lq_bench_before_${process.pid}`,
    PostgresStore: (await load<{ PostgresStore: typeof PostgresStore }>('server/store/postgres/postgres-store.js')).PostgresStore,
    createApp: (await load<{ createApp: typeof createApp }>('server/app.js')).createApp,
    loadConfig: (await load<{ loadConfig: typeof loadConfig }>('server/config/load.js')).loadConfig,
    Upstreams: (await load<{ Upstreams: typeof Upstreams }>('server/proxy/upstreams.js')).Upstreams,
  };
}

let instances = 0;

/** The bench's connections, by their application name: their backends' CPU is read from /proc. */
const APPLICATION = `lq-bench-${process.pid}`;
const withApplicationName = (url: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${APPLICATION}`;

const open = (build: Build, defaultBudgets: DefaultBudget[]) =>
  build.PostgresStore.open({
    url: withApplicationName(URL),
    schema: build.schema,
    poolSize: 32,
    statementTimeoutMs: 30_000,
    connectTimeoutMs: 5_000,
    defaultBudgets,
    defaultThresholds: [50, 80, 90, 95, 100],
    instanceId: `bench-${++instances}`,
    instanceTimeoutMs: 60_000,
  });

/** Users, projects and keys, and `rows` ledger entries over the last 60 days (generated in the database). */
async function fixture(build: Build, rows: number): Promise<{ subjects: RequestSubject[]; secrets: string[] }> {
  const store = await open(build, WITH_GLOBAL);
  const now = Date.now();
  const { subjects, secrets } = await seedDirectory(store, now);
  await store.close();
  if (rows > 0) {
    const db = new pg.Client({ connectionString: URL, options: `-c search_path=${quoteIdent(build.schema)}` });
    await db.connect();
    await db.query(
      `INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens,
         cached_tokens, reasoning_tokens, cost_micros, source, outcome, latency_ms)
       SELECT 'seed-' || i, $1::bigint - (i * $2::bigint) / $3::bigint, 'u' || (i % ${USERS}), 'p' || ((i % ${USERS}) % ${PROJECTS}), 'key_u' || (i % ${USERS}),
         'gpt-4o-mini', 400 + i % 300, 150 + i % 200, 0, 0, 90 + i % 50, 'upstream', 'ok', 800
       FROM generate_series(0, $3::bigint - 1) AS i`,
      [now, 60 * 86_400_000, rows],
    );
    await db.query('ANALYZE');
    await db.end();
  }
  return { subjects, secrets };
}

/** The connection that reads the backends' CPU (and sets up and drops the schemas). */
let admin: pg.Client;

/** Pairs per second, and the CPU a pair took in this process and in the PostgreSQL backends. */
type Pairs = RatedRounds;

/**
 * Reserve+settle pairs per second with `concurrency` requests in flight, spread over `stores` (one
 * per instance). Each request awaits its durable settle before the next one starts on its lane.
 */
let seq = 0;
async function pairsPerSecond(stores: PostgresStore[], subjects: RequestSubject[], concurrency: number, rounds = ROUNDS): Promise<Pairs> {
  const perLane = Math.ceil(PAIRS / concurrency);
  const lane = async (laneIndex: number) => {
    const store = stores[laneIndex % stores.length] as PostgresStore;
    for (let i = 0; i < perLane; i++) {
      const subject = subjects[(laneIndex * 7 + i) % subjects.length] as RequestSubject;
      const holdId = `bench-${process.pid}-${seq++}`;
      const now = Date.now();
      const held = await store.reserve({
        holdId,
        subject,
        quote: { tokens: 500, micros: 75, output: { wantTokens: 1_000, minTokens: 1, microsPerMillion: 600_000 } },
        now,
        ttlMs: 600_000,
      });
      if (!held.ok) throw new Error('bench budget refused a request');
      await store.settle({
        holdId,
        subject,
        usage: { model: 'gpt-4o-mini', inputTokens: 500, outputTokens: 200, cachedTokens: 0, reasoningTokens: 0, costMicros: 195, source: 'upstream', outcome: 'ok', latencyMs: 900, sessionId: null, tags: {} },
        now,
      });
    }
  };
  return timedRounds(rounds, perLane * concurrency, () => Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i))), admin, APPLICATION);
}

async function quotaLatency(build: Build, store: PostgresStore, secret: string) {
  const loaded = build.loadConfig({ env: {}, cwd: os.tmpdir() });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  const config = { ...loaded.config, defaultBudgets: WITH_GLOBAL };
  const upstreams = build.Upstreams.fromConfig(config);
  const app = build.createApp({ store, config, clock: systemClock, adminTokenHash: hashSecret('bench-admin-token-000000'), upstreams });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const inProcess = await latencyOf(
    async () => {
      await (await app.request('/quota', { headers: { authorization: `Bearer ${secret}` } })).text();
    },
    ROUNDS,
    REQUESTS,
  );
  const health = await httpLatency(`${base}/health`, secret, ROUNDS, REQUESTS);
  const quota = await httpLatency(`${base}/quota`, secret, ROUNDS, REQUESTS);
  await new Promise((resolve) => server.close(resolve));
  await upstreams.close();
  return { inProcess, health, quota };
}

interface Figures {
  single: Pairs;
  floor: Pairs;
  floorReading: Pairs;
  concurrent: Pairs;
  twoInstances: Pairs;
  noGlobal: Pairs;
  latency: Awaited<ReturnType<typeof quotaLatency>>;
  loadSeconds: number;
}

/** The medians of rounds (or of turns), figure by figure. */
const medianPairs = (all: readonly Pairs[]): Pairs => ({
  rate: median(all.map((p) => p.rate)),
  nodeMicros: median(all.map((p) => p.nodeMicros)),
  postgresMicros: median(all.map((p) => p.postgresMicros)),
  walBytes: median(all.map((p) => p.walBytes)),
});

/** Every measurement on one build, in its own schema. */
async function measure(build: Build): Promise<Figures> {
  const t = Date.now();
  const { subjects, secrets } = await fixture(build, ROWS);
  const loadSeconds = (Date.now() - t) / 1000;

  const one = await open(build, WITH_GLOBAL);
  const two = await open(build, WITH_GLOBAL);
  // A round untimed first: the counters of 200 users' windows are counted from the ledger once.
  await pairsPerSecond([one, two], subjects, CONCURRENCY, 1);
  // One at a time, round by round in turn with the two floors: lone pairs run slower for a while
  // after the round above (BENCHMARKS.md, migration 15), and whichever went first would pay alone.
  const lone: Record<'single' | 'floor' | 'floorReading', Pairs[]> = { single: [], floor: [], floorReading: [] };
  const floors = await openFloors(URL, APPLICATION, build.schema, subjects);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      lone.single.push(await pairsPerSecond([one], subjects, 1, 1));
      lone.floor.push(await floors.pairs('writes', PAIRS, 1));
      lone.floorReading.push(await floors.pairs('reads and writes', PAIRS, 1));
    }
  } finally {
    await floors.close();
  }
  const single = medianPairs(lone.single);
  const floor = medianPairs(lone.floor);
  const floorReading = medianPairs(lone.floorReading);
  const concurrent = await pairsPerSecond([one], subjects, CONCURRENCY);
  const twoInstances = await pairsPerSecond([one, two], subjects, CONCURRENCY);
  const latency = await quotaLatency(build, one, secrets[0] as string);
  await Promise.all([one.close(), two.close()]);

  const noGlobalOne = await open(build, WITHOUT_GLOBAL);
  const noGlobalTwo = await open(build, WITHOUT_GLOBAL);
  // Untimed first, as above: two new stores' first round is several times slower than the next.
  await pairsPerSecond([noGlobalOne, noGlobalTwo], subjects, CONCURRENCY, 1);
  const noGlobal = await pairsPerSecond([noGlobalOne, noGlobalTwo], subjects, CONCURRENCY);
  await Promise.all([noGlobalOne.close(), noGlobalTwo.close()]);
  return { single, floor, floorReading, concurrent, twoInstances, noGlobal, latency, loadSeconds };
}

async function main() {
  const server = new pg.Client({ connectionString: URL });
  await server.connect();
  admin = server;
  const version = (await server.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  const before = args.before === undefined ? null : await buildAt(args.before);
  console.log(
    `command: npm run bench:postgres -- --rows ${ROWS} --pairs ${PAIRS} --requests ${REQUESTS} --rounds ${ROUNDS} --concurrency ${CONCURRENCY}${before ? ` --before ${args.before}` : ''}`,
  );
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}, PostgreSQL ${version} on 127.0.0.1 (same machine)`);
  console.log(`budgets per request: 4 (key rolling 5 h, user month, project day in $, global month in $), or 3 without the global one; ${USERS} users\n`);
  const builds = before ? [thisBuild, before] : [thisBuild];
  try {
    // Turns: after, before, after, … so that a change in the machine's load falls on both.
    const runs = new Map<Build, Figures[]>(builds.map((b) => [b, []]));
    const turns = before ? 2 : 1;
    for (let turn = 0; turn < turns; turn++) {
      for (const build of turn % 2 === 0 ? builds : [...builds].reverse()) {
        (runs.get(build) as Figures[]).push(await measure(build));
        await server.query(`DROP SCHEMA IF EXISTS ${quoteIdent(build.schema)} CASCADE`);
      }
    }
    const figures = (build: Build): Figures => {
      const all = runs.get(build) as Figures[];
      const mid = (pick: (f: Figures) => number) => median(all.map(pick));
      const lat = (pick: (f: Figures) => { p50: number; p99: number }) => ({ p50: mid((f) => pick(f).p50), p99: mid((f) => pick(f).p99) });
      const pairsOf = (pick: (f: Figures) => Pairs): Pairs => medianPairs(all.map(pick));
      return {
        single: pairsOf((f) => f.single),
        floor: pairsOf((f) => f.floor),
        floorReading: pairsOf((f) => f.floorReading),
        concurrent: pairsOf((f) => f.concurrent),
        twoInstances: pairsOf((f) => f.twoInstances),
        noGlobal: pairsOf((f) => f.noGlobal),
        latency: { inProcess: lat((f) => f.latency.inProcess), health: lat((f) => f.latency.health), quota: lat((f) => f.latency.quota) },
        loadSeconds: mid((f) => f.loadSeconds),
      } as Figures;
    };
    const after = figures(thisBuild);
    const earlier = before && figures(before);
    const cpu = (p: Pairs) => `CPU a pair ${fmt(p.nodeMicros)} µs node + ${fmt(p.postgresMicros)} µs PostgreSQL, WAL ${fmt(p.walBytes / 1024, 1)} KB`;
    const pairs = (label: string, pick: (f: Figures) => Pairs, perPair = false) => {
      const a = pick(after);
      const extra = perPair ? `   (${fmt(1000 / a.rate, 2)} ms a pair)` : '';
      const b = earlier && pick(earlier);
      console.log(`  ${label.padEnd(42)} ${fmt(a.rate).padStart(6)} /s${extra}   ${cpu(a)}`);
      if (b) console.log(`  ${'  before'.padEnd(42)} ${fmt(b.rate).padStart(6)} /s (after ${fmt(a.rate / b.rate, 2)}×)   ${cpu(b)}`);
    };
    console.log(`reserve+settle pairs per second (each settle a committed transaction; ${fmt(ROWS)} ledger rows; median of ${ROUNDS} rounds of ${fmt(PAIRS)}${turns > 1 ? `, of ${turns} turns` : ''}):`);
    pairs('4 budgets, one at a time', (f) => f.single, true);
    // The same work on the same schema as two bare statements (postgres-floor.ts): the writes, then
    // the reads and writes of lobe-quota's design. The code is the same in both builds: one figure each.
    for (const [label, floor] of [
      ['  floor: the bare writes', after.floor],
      ['  floor: bare reads and writes', after.floorReading],
    ] as const) {
      console.log(
        `  ${label.padEnd(42)} ${fmt(floor.rate).padStart(6)} /s   (${fmt(1000 / floor.rate, 2)} ms a pair; lobe-quota ${fmt(floor.rate / after.single.rate, 2)}× its time)   ${cpu(floor)}`,
      );
    }
    pairs(`4 budgets, ${CONCURRENCY} in flight, one instance`, (f) => f.concurrent);
    pairs(`4 budgets, ${CONCURRENCY} in flight, two instances`, (f) => f.twoInstances);
    pairs(`3 budgets (no global), ${CONCURRENCY} in flight, two`, (f) => f.noGlobal);
    console.log(`\nGET /quota latency with a user key (median of ${ROUNDS} rounds of ${fmt(REQUESTS)} sequential requests):`);
    for (const [label, pick] of [
      ['handler in-process', (f: Figures) => f.latency.inProcess],
      ['HTTP /health (pings the database)', (f: Figures) => f.latency.health],
      ['HTTP /quota', (f: Figures) => f.latency.quota],
    ] as const) {
      const b = earlier && pick(earlier);
      console.log(latencyLine(label, pick(after)) + (b ? `   before p50 ${fmt(b.p50, 3)} ms   p99 ${fmt(b.p99, 3)} ms` : ''));
    }
    console.log(`\n(ledger of ${fmt(ROWS)} rows loaded in ${fmt(after.loadSeconds, 1)} s)`);
  } finally {
    for (const build of builds) await server.query(`DROP SCHEMA IF EXISTS ${quoteIdent(build.schema)} CASCADE`);
    await server.end();
  }
}

await main();
