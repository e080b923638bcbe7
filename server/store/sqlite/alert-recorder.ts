import { randomUUID } from 'node:crypto';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { AlertEvent, AlertKind, TopConsumer } from '../../alerts/alert-event.js';
import type { Spike, SpikeConfig } from '../../alerts/spikes.js';
import { crossedThresholds, projectable, projectedExhaustion } from '../../alerts/thresholds.js';
import type { Budget } from '../../quota/budgets.js';
import { formatScope, type Scope } from '../../quota/scope.js';
import { microsToUsd, percentageOf } from '../../quota/status.js';
import { bucketAt, formatInstant, nextResetAt, type WindowSpec } from '../../quota/window.js';

export interface AlertOptions {
  /** The channels (by name) an alert goes to, decided when it fires. */
  channelsFor(event: AlertEvent): string[];
  /** Whether to fire `projected` alerts. */
  projection: boolean;
}

interface Sums {
  tokens: number;
  micros: number;
}

/** What one settling transaction did to one budget. */
export interface BudgetMove {
  budget: Budget;
  /** The window's settled usage before the transaction. */
  before: Sums;
  added: Sums;
  /** Start of the oldest bucket with usage (rolling windows), for the reset time. */
  oldestUsed: number | null;
  now: number;
}

const SCOPE_COLUMN = { user: 'user_id', project: 'project_id', key: 'key_id' } as const;
const HOUR = 3_600_000;

/** A spike's scope is always a subject's ('user:alice'), never 'global'. */
const subjectScope = (text: string): Scope => {
  const colon = text.indexOf(':');
  return { kind: text.slice(0, colon) as 'user' | 'project' | 'key', id: text.slice(colon + 1) };
};

/**
 * Turns budget moves into alert rows, inside the settling transaction. Each alert is unique per
 * budget, window, kind and threshold in the database, so it fires once whoever crosses it; its
 * deliveries are queued in the same transaction (the outbox).
 */
export class AlertRecorder {
  private readonly insertAlert: Statement;
  private readonly insertDelivery: Statement;
  private readonly names: Record<'user' | 'project' | 'key', Statement<[string], { name: string }>>;
  private readonly topStatements = new Map<string, Statement<unknown[], { id: string; tokens: number; micros: number }>>();

  constructor(
    private readonly db: Db,
    private readonly options: AlertOptions,
  ) {
    this.insertAlert = db.prepare(
      `INSERT INTO alerts (id, budget_key, scope, window_start, kind, threshold, fired_at, payload)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.insertDelivery = db.prepare(
      `INSERT INTO alert_deliveries (alert_id, channel, state, attempts, next_attempt_at) VALUES (?, ?, 'pending', 0, ?)`,
    );
    this.names = {
      user: db.prepare('SELECT name FROM users WHERE id = ?'),
      project: db.prepare('SELECT name FROM projects WHERE id = ?'),
      key: db.prepare('SELECT name FROM api_keys WHERE id = ?'),
    };
  }

  record(move: BudgetMove): void {
    const { budget, before, added, now } = move;
    const after = { tokens: before.tokens + added.tokens, micros: before.micros + added.micros };
    const units: Array<{ unit: 'tokens' | 'usd'; before: number; after: number; limit: number }> = [];
    if (budget.limitTokens !== null) units.push({ unit: 'tokens', before: before.tokens, after: after.tokens, limit: budget.limitTokens });
    if (budget.limitMicros !== null) units.push({ unit: 'usd', before: before.micros, after: after.micros, limit: budget.limitMicros });

    const fired = new Set<number>();
    for (const u of units) {
      for (const threshold of crossedThresholds(u.before, u.after, u.limit, budget.thresholds)) {
        if (fired.has(threshold)) continue;
        fired.add(threshold);
        this.fire(move, 'threshold', threshold, u, null);
      }
    }
    if (this.options.projection && projectable(budget.window)) {
      const bucket = bucketAt(budget.window, now);
      for (const u of units) {
        const at = projectedExhaustion({ used: u.after, limit: u.limit, windowStart: bucket.start, now, resetsAt: bucket.end });
        if (at !== null) {
          this.fire(move, 'projected', 0, u, at);
          break;
        }
      }
    }
  }

  private fire(
    move: BudgetMove,
    kind: AlertKind,
    threshold: number,
    u: { unit: 'tokens' | 'usd'; after: number; limit: number },
    projectedAt: number | null,
  ): void {
    const { budget, now } = move;
    const inUnit = (n: number) => (u.unit === 'usd' ? microsToUsd(n) : n);
    const resetsAt = nextResetAt(budget.window, now, move.oldestUsed);
    const event: AlertEvent = {
      id: `alert_${randomUUID()}`,
      kind,
      scope: formatScope(budget.scope),
      subjectName: this.nameOf(budget.scope),
      window: budget.window,
      threshold: kind === 'threshold' ? threshold : null,
      percentage: percentageOf(u.after, u.limit),
      usage: inUnit(u.after),
      limit: inUnit(u.limit),
      unit: u.unit,
      resetsAt: resetsAt === null ? null : formatInstant(resetsAt, budget.window),
      firedAt: new Date(now).toISOString(),
      projectedAt: projectedAt === null ? null : formatInstant(projectedAt, budget.window),
      topConsumers: this.topConsumers(budget.scope, budget.window, now, u.unit),
    };
    this.insert(event, budget.key, windowStartOf(budget, now), threshold, now);
  }

  /**
   * One anomaly alert per subject and clock hour (the UNIQUE key), queued like any other. Its
   * window is the last hour: `usage` is that hour's tokens, `limit` the level they went over.
   * Returns the event when it is new.
   */
  recordAnomaly(spike: Spike, config: SpikeConfig, now: number): AlertEvent | null {
    const scope = subjectScope(spike.scope);
    const window: WindowSpec = { kind: 'rolling', hours: 1 };
    const event: AlertEvent = {
      id: `alert_${randomUUID()}`,
      kind: 'anomaly',
      scope: spike.scope,
      subjectName: this.nameOf(scope),
      window,
      threshold: null,
      percentage: percentageOf(spike.lastHourTokens, spike.tripTokens),
      usage: spike.lastHourTokens,
      limit: spike.tripTokens,
      unit: 'tokens',
      resetsAt: null,
      firedAt: new Date(now).toISOString(),
      projectedAt: null,
      topConsumers: this.topConsumers(scope, window, now, 'tokens'),
      anomaly: {
        lastHourTokens: spike.lastHourTokens,
        baselineHourlyTokens: spike.baselineHourlyTokens,
        ratio: spike.ratio,
        baselineHours: config.baselineHours,
        factor: config.factor,
      },
    };
    return this.insert(event, `${spike.scope}|anomaly`, Math.floor(now / HOUR) * HOUR, 0, now) ? event : null;
  }

  private insert(event: AlertEvent, key: string, windowStart: number, threshold: number, now: number): boolean {
    const inserted = this.insertAlert.run(event.id, key, event.scope, windowStart, event.kind, threshold, now, JSON.stringify(event));
    if (inserted.changes === 0) return false; // fired before in this window
    for (const channel of this.options.channelsFor(event)) this.insertDelivery.run(event.id, channel, now);
    return true;
  }

  private nameOf(scope: Scope): string {
    if (scope.kind === 'global') return 'Global';
    return this.names[scope.kind].get(scope.id)?.name ?? scope.id;
  }

  /** The three biggest users and models of the window, by the unit that alerted. */
  private topConsumers(scope: Scope, window: WindowSpec, now: number, unit: 'tokens' | 'usd'): TopConsumer[] {
    const [from, to] = windowRange(window, now);
    const consumers: TopConsumer[] = [];
    const args = scope.kind === 'global' ? [from, to] : [scope.id, from, to];
    for (const kind of ['user', 'model'] as const) {
      const rows = this.topStatement(scope, kind, unit).all(...args, ...args);
      for (const row of rows) consumers.push({ kind, id: row.id, usage: unit === 'usd' ? microsToUsd(row.micros) : row.tokens });
    }
    return consumers;
  }

  private topStatement(scope: Scope, kind: 'user' | 'model', unit: 'tokens' | 'usd') {
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const cacheKey = `${column}|${kind}|${unit}`;
    let statement = this.topStatements.get(cacheKey);
    if (!statement) {
      // The ledger and its rollup (entries past retention, which a total budget still counts).
      const part = (table: string, at: string) =>
        `SELECT ${kind === 'user' ? 'user_id' : 'model'} AS id, input_tokens + output_tokens AS tokens, cost_micros AS micros
         FROM ${table} WHERE ${column === null ? '' : `${column} = ? AND `}${at} >= ? AND ${at} < ?`;
      statement = this.db.prepare<unknown[], { id: string; tokens: number; micros: number }>(
        `SELECT id, SUM(tokens) AS tokens, SUM(micros) AS micros FROM (${part('ledger', 'at')} UNION ALL ${part('ledger_rollup', 'slot_at')})
         GROUP BY 1 ORDER BY ${unit === 'usd' ? 'micros' : 'tokens'} DESC, 1 LIMIT 3`,
      );
      this.topStatements.set(cacheKey, statement);
    }
    return statement;
  }
}

/**
 * The window an alert belongs to, for "once per window": a calendar window's start; 0 for a total
 * budget (once ever); for a rolling window, consecutive blocks of its length (it never restarts).
 */
export function windowStartOf(budget: Budget, now: number): number {
  const w = budget.window;
  if (w.kind === 'total') return 0;
  if (w.kind === 'rolling') return Math.floor(now / (w.hours * HOUR)) * w.hours * HOUR;
  return bucketAt(w, now).start;
}

function windowRange(w: WindowSpec, now: number): [number, number] {
  if (w.kind === 'total') return [0, now + 1];
  if (w.kind === 'rolling') return [now - w.hours * HOUR, now + 1];
  const bucket = bucketAt(w, now);
  return [bucket.start, bucket.end ?? now + 1];
}
