import type { Database as Db, Statement } from 'better-sqlite3';
import type { AlertEvent, TopConsumer } from '../../alerts/alert-event.js';
import {
  anomalyAlertRow,
  budgetAlertRow,
  overrunAlertRow,
  requestAlertRow,
  planBudgetAlerts,
  subjectScope,
  topConsumersOf,
  windowRange,
  type AlertOptions,
  type AlertRow,
  type AlertUnit,
  type BudgetMove,
} from '../../alerts/alert-planning.js';
import type { Spike, SpikeConfig } from '../../alerts/spikes.js';
import type { Scope } from '../../quota/scope.js';
import type { LedgerEntry } from '../types.js';
import type { WindowSpec } from '../../quota/window.js';
import { ANOMALY_WINDOW } from '../../alerts/alert-planning.js';
import { SCOPE_COLUMN, topConsumersSql } from '../sql/ledger-sql.js';

export type { AlertOptions, BudgetMove } from '../../alerts/alert-planning.js';

/**
 * Turns budget moves into alert rows, inside the settling transaction (what fires and what it says
 * is alert-planning's). Each alert is unique per budget, window, kind and threshold in the database,
 * so it fires once whoever crosses it; its deliveries are queued in the same transaction (the outbox).
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

  /** Returns how many alerts were new. */
  record(move: BudgetMove): number {
    const { budget, now } = move;
    let inserted = 0;
    for (const planned of planBudgetAlerts(move, this.options.projection)) {
      const top = this.topConsumers(budget.scope, budget.window, now, planned.unit);
      if (this.insert(budgetAlertRow(move, planned, this.nameOf(budget.scope), top), now)) inserted++;
    }
    return inserted;
  }

  /** One anomaly alert per subject and clock hour; returns the event when it is new. */
  recordAnomaly(spike: Spike, config: SpikeConfig, now: number): AlertEvent | null {
    const scope = subjectScope(spike.scope);
    const row = anomalyAlertRow(spike, config, now, this.nameOf(scope), this.topConsumers(scope, ANOMALY_WINDOW, now, 'tokens'));
    return this.insert(row, now) ? row.event : null;
  }

  /** One overrun alert per model and clock hour; returns the event when it is new. */
  recordOverrun(entry: LedgerEntry): AlertEvent | null {
    const row = overrunAlertRow(entry, this.nameOf({ kind: 'user', id: entry.userId }));
    return this.insert(row, entry.at) ? row.event : null;
  }

  /** An increase request's alert (its announcement or its decision): one per request and kind. */
  recordRequest(event: AlertEvent, now: number): boolean {
    return this.insert(requestAlertRow(event), now);
  }

  private insert({ event, budgetKey, windowStart, threshold }: AlertRow, now: number): boolean {
    const inserted = this.insertAlert.run(event.id, budgetKey, event.scope, windowStart, event.kind, threshold, now, JSON.stringify(event));
    if (inserted.changes === 0) return false; // fired before in this window
    for (const channel of this.options.channelsFor(event)) this.insertDelivery.run(event.id, channel, now);
    return true;
  }

  private nameOf(scope: Scope): string {
    if (scope.kind === 'global') return 'Global';
    if (scope.kind === 'upstream') return `Upstream ${scope.id}`;
    return this.names[scope.kind].get(scope.id)?.name ?? scope.id;
  }

  /** The three biggest users and models of the window, by the unit that alerted. */
  private topConsumers(scope: Scope, window: WindowSpec, now: number, unit: AlertUnit): TopConsumer[] {
    const [from, to] = windowRange(window, now);
    const args = scope.kind === 'global' ? [from, to] : [scope.id, from, to];
    return (['user', 'model'] as const).flatMap((kind) => topConsumersOf(kind, this.topStatement(scope, kind, unit).all(...args, ...args), unit));
  }

  private topStatement(scope: Scope, kind: 'user' | 'model', unit: AlertUnit) {
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const cacheKey = `${column}|${kind}|${unit}`;
    let statement = this.topStatements.get(cacheKey);
    if (!statement) {
      statement = this.db.prepare<unknown[], { id: string; tokens: number; micros: number }>(topConsumersSql(column, kind, unit));
      this.topStatements.set(cacheKey, statement);
    }
    return statement;
  }
}
