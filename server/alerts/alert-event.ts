import type { WindowSpec } from '../quota/window.js';

export type AlertKind = 'threshold' | 'projected';

export interface TopConsumer {
  kind: 'user' | 'model';
  id: string;
  usage: number;
}

/** One alert as delivered. `usage`/`limit` are in `unit` (tokens, or US dollars for 'usd'). */
export interface AlertEvent {
  id: string;
  kind: AlertKind;
  /** e.g. 'user:alice', 'project:research', 'global' */
  scope: string;
  /** Human name of the scope's subject, e.g. 'Alice'. */
  subjectName: string;
  window: WindowSpec;
  /** Percent crossed (null for 'projected'). */
  threshold: number | null;
  /** One decimal. */
  percentage: number;
  usage: number;
  limit: number;
  unit: 'tokens' | 'usd';
  /** ISO with the budget's offset. */
  resetsAt: string | null;
  firedAt: string;
  /** When the budget is projected to run out ('projected' alerts). */
  projectedAt: string | null;
  /** Top users and models of the window, usage in `unit`. */
  topConsumers: TopConsumer[];
}

/** The generic webhook body (DESIGN), plus the alert's id, kind and projection. */
export function webhookPayload(alert: AlertEvent) {
  const { scope, window, threshold, percentage, usage, limit, unit, resetsAt, firedAt, topConsumers, kind, projectedAt, id } = alert;
  return { scope, window, threshold, percentage, usage, limit, unit, resetsAt, firedAt, topConsumers, kind, projectedAt, id };
}
