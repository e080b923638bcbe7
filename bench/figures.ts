// What the benchmarks share: medians and percentiles, number formatting, and sequential HTTP GET
// latency over one keep-alive connection.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

export const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

export const percentile = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export interface Latency {
  p50: number;
  p99: number;
}

/** Median over `rounds` of each round's p50 and p99 of `requests` sequential calls; round 0 warms up and is not counted. */
export async function latencyOf(call: () => Promise<void>, rounds: number, requests: number): Promise<Latency> {
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    const samples: number[] = [];
    for (let i = 0; i < requests; i++) {
      const t = process.hrtime.bigint();
      await call();
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    if (round === 0) continue;
    p50s.push(percentile(samples, 50));
    p99s.push(percentile(samples, 99));
  }
  return { p50: median(p50s), p99: median(p99s) };
}

/** Sequential GETs over one keep-alive connection; latencies in ms. */
export async function httpLatency(url: string, token: string, rounds: number, requests: number): Promise<Latency> {
  const agent = new Agent({ connections: 1, pipelining: 1 });
  const latency = await latencyOf(
    async () => {
      const res = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    },
    rounds,
    requests,
  );
  await agent.close();
  return latency;
}

export const latencyLine = (label: string, l: Latency) => `  ${label.padEnd(34)} p50 ${fmt(l.p50, 3)} ms   p99 ${fmt(l.p99, 3)} ms`;

/** A connection the figures read PostgreSQL's own counters through (a pg Client). */
export interface Queryable {
  query: (sql: string, values: unknown[]) => Promise<{ rows: unknown[] }>;
}

/**
 * CPU time (µs, user + system) of the PostgreSQL backends connected with `applicationName`, read
 * from /proc: on a machine shared with other work, CPU per operation is the figure that noise
 * does not move (throughput on 2 cores is bounded by it). Backends that exit are not counted, so
 * take it over a phase whose connections stay open. Linux only; 0 elsewhere.
 */
export async function backendCpuMicros(db: Queryable, applicationName: string): Promise<Map<number, number>> {
  const rows = (await db.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName])).rows as { pid: number }[];
  const ticks = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(pid, (Number(fields[11]) + Number(fields[12])) * (1e6 / CLOCK_TICKS_PER_SECOND));
    } catch {
      // Gone, or not Linux.
    }
  }
  return ticks;
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times, is 100 on every architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The CPU the backends spent between two readings of backendCpuMicros (new backends from 0). */
export const cpuSpent = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((sum, [pid, us]) => sum + us - (before.get(pid) ?? 0), 0);

/**
 * Operations per second, the CPU an operation took in this process and in the PostgreSQL backends,
 * and the write-ahead log it wrote (bytes).
 */
export interface RatedRounds {
  rate: number;
  nodeMicros: number;
  postgresMicros: number;
  walBytes: number;
}

/** Where PostgreSQL's write-ahead log ends now: the server's whole log, so read it while nothing else writes. */
async function walInsertLsn(db: Queryable): Promise<string> {
  const rows = (await db.query('SELECT pg_current_wal_insert_lsn()::text AS lsn', [])).rows as { lsn: string }[];
  return rows[0]?.lsn ?? '0/0';
}

/** Bytes of write-ahead log since `lsn`. */
async function walSince(db: Queryable, lsn: string): Promise<number> {
  const rows = (await db.query('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8 AS bytes', [lsn])).rows as { bytes: number }[];
  return rows[0]?.bytes ?? 0;
}

/**
 * `rounds` timed runs of `count` operations (`run` does them all): the medians of their rates, of
 * the CPU an operation took here and in the backends `db` sees under `applicationName`, and of the
 * write-ahead log an operation wrote.
 */
export async function timedRounds(
  rounds: number,
  count: number,
  run: () => Promise<unknown>,
  db: Queryable,
  applicationName: string,
): Promise<RatedRounds> {
  const rates: number[] = [];
  const nodeMicros: number[] = [];
  const postgresMicros: number[] = [];
  const walBytes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const wal = await walInsertLsn(db);
    const backends = await backendCpuMicros(db, applicationName);
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const spent = process.cpuUsage(cpu);
    rates.push(count / seconds);
    nodeMicros.push((spent.user + spent.system) / count);
    postgresMicros.push(cpuSpent(backends, await backendCpuMicros(db, applicationName)) / count);
    walBytes.push((await walSince(db, wal)) / count);
  }
  return { rate: median(rates), nodeMicros: median(nodeMicros), postgresMicros: median(postgresMicros), walBytes: median(walBytes) };
}
