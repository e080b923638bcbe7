import type { AlertEvent, TopConsumer } from '../../alerts/alert-event.js';
import {
  ANOMALY_WINDOW,
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
import { SCOPE_COLUMN, topConsumersSql } from '../sql/ledger-sql.js';
import { numbered, type Tx } from './pg-pool.js';

const NAME_SQL = {
  user: 'SELECT name FROM users WHERE id = $1',
  project: 'SELECT name FROM projects WHERE id = $1',
  key: 'SELECT name FROM api_keys WHERE id = $1',
} as const;

/**
 * SQLite's AlertRecorder for PostgreSQL: alerts written in the settling transaction, unique per
 * budget, window, kind and threshold (ON CONFLICT DO NOTHING), their deliveries queued with them.
 * Names and top consumers are only read when something fires, so a settle that crosses nothing
 * costs no extra query.
 */
export class PgAlertRecorder {
  constructor(private readonly options: AlertOptions) {}

  /** Returns how many alerts were new. */
  async record(tx: Tx, move: BudgetMove): Promise<number> {
    const { budget, now } = move;
    let inserted = 0;
    for (const planned of planBudgetAlerts(move, this.options.projection)) {
      const top = await this.topConsumers(tx, budget.scope, budget.window, now, planned.unit);
      if (await this.insert(tx, budgetAlertRow(move, planned, await this.nameOf(tx, budget.scope), top), now)) inserted++;
    }
    return inserted;
  }

  /** One anomaly alert per subject and clock hour; returns the event when it is new. */
  async recordAnomaly(tx: Tx, spike: Spike, config: SpikeConfig, now: number): Promise<AlertEvent | null> {
    const scope = subjectScope(spike.scope);
    const top = await this.topConsumers(tx, scope, ANOMALY_WINDOW, now, 'tokens');
    const row = anomalyAlertRow(spike, config, now, await this.nameOf(tx, scope), top);
    return (await this.insert(tx, row, now)) ? row.event : null;
  }

  /** One overrun alert per model and clock hour; returns the event when it is new. */
  async recordOverrun(tx: Tx, entry: LedgerEntry): Promise<AlertEvent | null> {
    const row = overrunAlertRow(entry, await this.nameOf(tx, { kind: 'user', id: entry.userId }));
    return (await this.insert(tx, row, entry.at)) ? row.event : null;
  }

  /** An increase request's alert (its announcement or its decision): one per request and kind. */
  recordRequest(tx: Tx, event: AlertEvent, now: number): Promise<boolean> {
    return this.insert(tx, requestAlertRow(event), now);
  }

  private async insert(tx: Tx, { event, budgetKey, windowStart, threshold }: AlertRow, now: number): Promise<boolean> {
    const inserted = await tx.query(
      `INSERT INTO alerts (id, budget_key, scope, window_start, kind, threshold, fired_at, payload)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [event.id, budgetKey, event.scope, windowStart, event.kind, threshold, now, JSON.stringify(event)],
    );
    if (inserted.rowCount === 0) return false; // fired before in this window
    const channels = this.options.channelsFor(event);
    if (channels.length > 0) {
      await tx.query(
        `INSERT INTO alert_deliveries (alert_id, channel, state, attempts, next_attempt_at)
         SELECT $1, channel, 'pending', 0, $3 FROM unnest($2::text[]) AS channel`,
        [event.id, channels, now],
      );
    }
    return true;
  }

  private async nameOf(tx: Tx, scope: Scope): Promise<string> {
    if (scope.kind === 'global') return 'Global';
    if (scope.kind === 'upstream') return `Upstream ${scope.id}`;
    const found = await tx.query<{ name: string }>(NAME_SQL[scope.kind], [scope.id]);
    return found.rows[0]?.name ?? scope.id;
  }

  private async topConsumers(tx: Tx, scope: Scope, window: WindowSpec, now: number, unit: AlertUnit): Promise<TopConsumer[]> {
    const [from, to] = windowRange(window, now);
    const column = scope.kind === 'global' ? null : SCOPE_COLUMN[scope.kind];
    const args = scope.kind === 'global' ? [from, to] : [scope.id, from, to];
    const consumers: TopConsumer[] = [];
    for (const kind of ['user', 'model'] as const) {
      const rows = await tx.query<{ id: string; tokens: number; micros: number }>(numbered(topConsumersSql(column, kind, unit)), [...args, ...args]);
      consumers.push(...topConsumersOf(kind, rows.rows, unit));
    }
    return consumers;
  }
}
