// bench:postgres's floor for one reserve+settle pair at a time: the least any metering design on
// this schema must do per request, as two bare statements on one connection. The reservation locks
// the request's scope rows and writes its hold, and commits without waiting for the disk (as
// lq_meter_many does); the settle locks them again, writes the ledger row, adds to the budgets'
// newest counters and deletes the hold, and commits durably. Left out, and so measured by the
// difference: the budgets' versions, their windows' usage and reservations, the decisions, the
// reservation rows, the running totals, the alert thresholds and the answers.
import pg from 'pg';
import type { RequestSubject } from '../server/quota/scope.js';
import { quoteIdent } from '../server/store/postgres/pg-pool.js';
import { backendCpuMicros, cpuSpent, median } from './figures.js';

const RESERVE = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)),
  locked AS (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE)
  INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
  SELECT $2, 'bench-floor', $3, $4, $5, 1500, 675, 1000, $6, $6::bigint + 600000, NULL, $6
  WHERE (SELECT count(*) FROM locked) >= 0 AND (SELECT count(*) FROM async) = 1`;

const SETTLE = `WITH locked AS (SELECT s.scope FROM scope_locks s WHERE s.scope = ANY($1::text[]) ORDER BY s.scope FOR UPDATE),
  gone AS (DELETE FROM holds WHERE id = $2),
  counted AS (UPDATE usage_counters c SET tokens = c.tokens + 700, micros = c.micros + 195
              FROM unnest($7::text[], $8::bigint[]) AS b(key, bucket) WHERE c.budget_key = b.key AND c.bucket_start = b.bucket)
  INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
    reasoning_tokens, cost_micros, source, outcome, latency_ms)
  SELECT $2, $6, $3, $4, $5, 'gpt-4o-mini', 500, 200, 0, 0, 195, 'upstream', 'ok', 900 WHERE (SELECT count(*) FROM locked) >= 0`;

interface FloorSubject {
  scopes: string[];
  subject: RequestSubject;
  /** The newest counter of each of its budgets: [budget keys, bucket starts]. */
  counters: [string[], number[]];
}

/**
 * Bare pairs per second one at a time on `schema` (after the store's own rounds, so that every
 * budget has its counters), and the CPU a pair took here and in the backend.
 */
export async function floorPairs(
  url: string,
  applicationName: string,
  schema: string,
  subjects: RequestSubject[],
  pairs: number,
  rounds: number,
): Promise<{ rate: number; nodeMicros: number; postgresMicros: number }> {
  const db = new pg.Client({ connectionString: url, application_name: applicationName, options: `-c search_path=${quoteIdent(schema)}` });
  await db.connect();
  try {
    const floorSubjects: FloorSubject[] = [];
    for (const subject of subjects) {
      const scopes = ['global', `key:${subject.keyId}`, `user:${subject.userId}`, ...(subject.projectId ? [`project:${subject.projectId}`] : [])];
      const { rows } = await db.query<{ budget_key: string; bucket_start: string }>(
        `SELECT DISTINCT ON (budget_key) budget_key, bucket_start FROM usage_counters
         WHERE split_part(budget_key, '|', 1) = ANY($1::text[]) ORDER BY budget_key, bucket_start DESC`,
        [scopes],
      );
      floorSubjects.push({ scopes, subject, counters: [rows.map((r) => r.budget_key), rows.map((r) => Number(r.bucket_start))] });
    }
    const rates: number[] = [];
    const nodeMicros: number[] = [];
    const postgresMicros: number[] = [];
    let seq = 0;
    const run = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const { scopes, subject, counters } = floorSubjects[i % floorSubjects.length] as FloorSubject;
        const id = `floor-${process.pid}-${seq++}`;
        const now = Date.now();
        const who = [subject.userId, subject.projectId, subject.keyId];
        await db.query({ name: 'floor-reserve', text: RESERVE, values: [scopes, id, ...who, now] });
        await db.query({ name: 'floor-settle', text: SETTLE, values: [scopes, id, ...who, now, ...counters] });
      }
    };
    // Untimed first: the statements are prepared, and their plans made.
    await run(100);
    for (let round = 0; round < rounds; round++) {
      const backends = await backendCpuMicros(db, applicationName);
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      await run(pairs);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const spent = process.cpuUsage(cpu);
      rates.push(pairs / seconds);
      nodeMicros.push((spent.user + spent.system) / pairs);
      postgresMicros.push(cpuSpent(backends, await backendCpuMicros(db, applicationName)) / pairs);
    }
    return { rate: median(rates), nodeMicros: median(nodeMicros), postgresMicros: median(postgresMicros) };
  } finally {
    await db.end();
  }
}
