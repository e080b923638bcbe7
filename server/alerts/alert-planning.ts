import { randomUUID } from 'node:crypto';
import type { Budget } from '../quota/budgets.js';
import { formatScope, type Scope } from '../quota/scope.js';
import { microsToUsd, percentageOf } from '../quota/status.js';
import { bucketAt, formatInstant, nextResetAt, type WindowSpec } from '../quota/window.js';
import type { LedgerEntry } from '../store/types.js';
import type { AlertEvent, AlertKind, TopConsumer } from './alert-event.js';
import type { Spike, SpikeConfig } from './spikes.js';
import { crossedThresholds, projectable, projectedExhaustion } from './thresholds.js';

/**
 * What alerts a settlement fires, and what they say: pure, so the SQLite and PostgreSQL stores
 * decide alike and differ only in how they read names and top consumers and insert the rows.
 */

export interface AlertOptions {
  /** The channels (by name) an alert goes to, decided when it fires. */
  channelsFor(event: AlertEvent): string[];
  /** Whether to fire `projected` alerts. */
  projection: boolean;
  /**
   * Told once the transaction that recorded one or more alerts has committed, so that a sender can
   * deliver them now rather than at its next poll (see AlertSender.wake).
   */
  recorded?(): void;
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

export type AlertUnit = 'tokens' | 'usd';

/** One alert a move fires, before its subject's name and top consumers are looked up. */
export interface PlannedAlert {
  kind: Extract<AlertKind, 'threshold' | 'projected'>;
  /** Percent; 0 for `projected`. */
  threshold: number;
  unit: AlertUnit;
  after: number;
  limit: number;
  projectedAt: number | null;
}

/** An alert row as both stores insert it: UNIQUE (budgetKey, windowStart, kind, threshold). */
export interface AlertRow {
  event: AlertEvent;
  budgetKey: string;
  windowStart: number;
  threshold: number;
}

const HOUR = 3_600_000;

/** Each threshold crossed in tokens or dollars (once, whichever unit crossed it), then a projection. */
export function planBudgetAlerts(move: BudgetMove, projection: boolean): PlannedAlert[] {
  const { budget, before, added, now } = move;
  const after = { tokens: before.tokens + added.tokens, micros: before.micros + added.micros };
  const units: Array<{ unit: AlertUnit; before: number; after: number; limit: number }> = [];
  if (budget.limitTokens !== null) units.push({ unit: 'tokens', before: before.tokens, after: after.tokens, limit: budget.limitTokens });
  if (budget.limitMicros !== null) units.push({ unit: 'usd', before: before.micros, after: after.micros, limit: budget.limitMicros });

  const planned: PlannedAlert[] = [];
  const fired = new Set<number>();
  for (const u of units) {
    for (const threshold of crossedThresholds(u.before, u.after, u.limit, budget.thresholds)) {
      if (fired.has(threshold)) continue;
      fired.add(threshold);
      planned.push({ kind: 'threshold', threshold, unit: u.unit, after: u.after, limit: u.limit, projectedAt: null });
    }
  }
  if (projection && projectable(budget.window)) {
    const bucket = bucketAt(budget.window, now);
    for (const u of units) {
      const at = projectedExhaustion({ used: u.after, limit: u.limit, windowStart: bucket.start, now, resetsAt: bucket.end });
      if (at !== null) {
        planned.push({ kind: 'projected', threshold: 0, unit: u.unit, after: u.after, limit: u.limit, projectedAt: at });
        break;
      }
    }
  }
  return planned;
}

/** The row of a planned budget alert, given its subject's name and the window's top consumers. */
export function budgetAlertRow(move: BudgetMove, planned: PlannedAlert, subjectName: string, topConsumers: TopConsumer[]): AlertRow {
  const { budget, now } = move;
  const inUnit = (n: number) => (planned.unit === 'usd' ? microsToUsd(n) : n);
  const resetsAt = nextResetAt(budget.window, now, move.oldestUsed);
  const event: AlertEvent = {
    id: `alert_${randomUUID()}`,
    kind: planned.kind,
    scope: formatScope(budget.scope),
    subjectName,
    window: budget.window,
    threshold: planned.kind === 'threshold' ? planned.threshold : null,
    percentage: percentageOf(planned.after, planned.limit),
    usage: inUnit(planned.after),
    limit: inUnit(planned.limit),
    unit: planned.unit,
    resetsAt: resetsAt === null ? null : formatInstant(resetsAt, budget.window),
    firedAt: new Date(now).toISOString(),
    projectedAt: planned.projectedAt === null ? null : formatInstant(planned.projectedAt, budget.window),
    topConsumers,
  };
  return { event, budgetKey: budget.key, windowStart: windowStartOf(budget, now), threshold: planned.threshold };
}

/** An anomaly's window: the last hour. */
export const ANOMALY_WINDOW: WindowSpec = { kind: 'rolling', hours: 1 };

/**
 * One anomaly alert per subject and clock hour (the UNIQUE key). Its window is the last hour:
 * `usage` is that hour's tokens, `limit` the level they went over.
 */
export function anomalyAlertRow(spike: Spike, config: SpikeConfig, now: number, subjectName: string, topConsumers: TopConsumer[]): AlertRow {
  const event: AlertEvent = {
    id: `alert_${randomUUID()}`,
    kind: 'anomaly',
    scope: spike.scope,
    subjectName,
    window: ANOMALY_WINDOW,
    threshold: null,
    percentage: percentageOf(spike.lastHourTokens, spike.tripTokens),
    usage: spike.lastHourTokens,
    limit: spike.tripTokens,
    unit: 'tokens',
    resetsAt: null,
    firedAt: new Date(now).toISOString(),
    projectedAt: null,
    topConsumers,
    anomaly: {
      lastHourTokens: spike.lastHourTokens,
      baselineHourlyTokens: spike.baselineHourlyTokens,
      ratio: spike.ratio,
      baselineHours: config.baselineHours,
      factor: config.factor,
    },
  };
  return { event, budgetKey: `${spike.scope}|anomaly`, windowStart: Math.floor(now / HOUR) * HOUR, threshold: 0 };
}

/** An overrun's window: the clock hour it fired in. */
export const OVERRUN_WINDOW: WindowSpec = { kind: 'rolling', hours: 1 };

/**
 * Where an overrun alert's row goes: one per model and clock hour (the UNIQUE key), so an upstream
 * that ignores its limit on every request raises one alert an hour, not one per request.
 * lq_settle_one (PostgreSQL) looks this row up to know whether a settle has one to record.
 */
export const overrunAlertKey = (model: string, now: number): { budgetKey: string; windowStart: number } => ({
  budgetKey: `model:${model}|overrun`,
  windowStart: Math.floor(now / HOUR) * HOUR,
});

/**
 * The alert of an entry charged more output than its request was allowed (`overrunTokens` > 0),
 * under the scope of the user it was charged to: `usage` is the output charged, `limit` the output
 * allowed.
 */
export function overrunAlertRow(entry: LedgerEntry, subjectName: string): AlertRow {
  const allowed = entry.outputTokens - entry.overrunTokens;
  const event: AlertEvent = {
    id: `alert_${randomUUID()}`,
    kind: 'overrun',
    scope: `user:${entry.userId}`,
    subjectName,
    window: OVERRUN_WINDOW,
    threshold: null,
    percentage: percentageOf(entry.outputTokens, allowed),
    usage: entry.outputTokens,
    limit: allowed,
    unit: 'tokens',
    resetsAt: null,
    firedAt: new Date(entry.at).toISOString(),
    projectedAt: null,
    topConsumers: [],
    overrun: {
      requestId: entry.requestId,
      model: entry.model,
      userId: entry.userId,
      keyId: entry.keyId,
      allowedOutputTokens: allowed,
      chargedOutputTokens: entry.outputTokens,
    },
  };
  return { event, ...overrunAlertKey(entry.model, entry.at), threshold: 0 };
}

/** Where a request's alert goes: one per request and kind (announced, decided). */
export const requestAlertRow = (event: AlertEvent): AlertRow => ({ event, budgetKey: `request:${event.request?.id ?? event.id}`, windowStart: 0, threshold: 0 });

/** A spike's scope is always a subject's ('user:alice'), never 'global'. */
export const subjectScope = (text: string): Scope => {
  const colon = text.indexOf(':');
  return { kind: text.slice(0, colon) as 'user' | 'project' | 'key', id: text.slice(colon + 1) };
};

/** Top consumers as the unit that alerted reads them (dollars from micro-dollars). */
export const topConsumersOf = (kind: TopConsumer['kind'], rows: ReadonlyArray<{ id: string; tokens: number; micros: number }>, unit: AlertUnit): TopConsumer[] =>
  rows.map((row) => ({ kind, id: row.id, usage: unit === 'usd' ? microsToUsd(row.micros) : row.tokens }));

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

/** The range [from, to) whose usage an alert's top consumers are taken from. */
export function windowRange(w: WindowSpec, now: number): [number, number] {
  if (w.kind === 'total') return [0, now + 1];
  if (w.kind === 'rolling') return [now - w.hours * HOUR, now + 1];
  const bucket = bucketAt(w, now);
  return [bucket.start, bucket.end ?? now + 1];
}
