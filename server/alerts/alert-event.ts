import type { WindowSpec } from '../quota/window.js';

/**
 * `request`: a user asked for more (with signed approve/deny links); `request_decided`: the answer,
 * so the requester's channels hear back (a kind of its own, so a channel can take one and not the other).
 */
export type AlertKind = 'threshold' | 'projected' | 'anomaly' | 'overrun' | 'request' | 'request_decided';

/** An increase request as its alerts carry it; amounts in the budget's unit and both units. */
export interface RequestFacts {
  id: string;
  userId: string;
  keyId: string;
  /** The budget asked on: its scope text and key. */
  scope: string;
  budgetKey: string;
  /** What was asked, in the alert's `unit`. */
  amount: number;
  amountTokens: number;
  amountUsd: number;
  reason: string | null;
  state: 'open' | 'approved' | 'denied';
  createdAt: string;
  decidedAt: string | null;
  decidedBy: 'admin' | 'link' | 'policy' | null;
  grantedTokens: number | null;
  grantedUsd: number | null;
  grantId: string | null;
}

/** Signed one-click links (GET shows a confirm page; its button POSTs). */
export interface RequestLinks {
  approve: string;
  deny: string;
}

/** What an `anomaly` alert measured: the last hour's tokens against the subject's own usual rate. */
export interface AnomalyFacts {
  /** Tokens in the hour before the alert. */
  lastHourTokens: number;
  /** Average tokens per hour over the baseline hours before that hour. */
  baselineHourlyTokens: number;
  /** lastHourTokens / baselineHourlyTokens, one decimal; null when the baseline is zero. */
  ratio: number | null;
  baselineHours: number;
  /** The configured factor that was exceeded. */
  factor: number;
}

/** What an `overrun` alert reports: a request its upstream charged more output than it allowed. */
export interface OverrunFacts {
  requestId: string;
  model: string;
  userId: string;
  keyId: string;
  /** The request's output allowance (its max_tokens as forwarded, or as its lease had grown). */
  allowedOutputTokens: number;
  /** The output the upstream reported, and the ledger charged. */
  chargedOutputTokens: number;
}

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
  /**
   * Only on 'anomaly' alerts (whose window is the last hour, `usage` its tokens and `limit` the
   * level it exceeded). Optional so that payloads stored before spike detection still parse.
   */
  anomaly?: AnomalyFacts;
  /** Only on 'overrun' alerts (whose `usage` is the output charged and `limit` the output allowed). */
  overrun?: OverrunFacts;
  /** Only on 'request' and 'request_decided' alerts (whose usage, limit and percentage are the budget's when it fired). */
  request?: RequestFacts;
  /** Only on 'request' alerts: approve and deny in one click. */
  links?: RequestLinks;
}

/** The generic webhook body (DESIGN), plus the alert's id, kind and projection. */
export function webhookPayload(alert: AlertEvent) {
  const { scope, window, threshold, percentage, usage, limit, unit, resetsAt, firedAt, topConsumers, kind, projectedAt, id, anomaly, overrun, request, links } = alert;
  return {
    scope,
    window,
    threshold,
    percentage,
    usage,
    limit,
    unit,
    resetsAt,
    firedAt,
    topConsumers,
    kind,
    projectedAt,
    id,
    ...(anomaly ? { anomaly } : {}),
    ...(overrun ? { overrun } : {}),
    ...(request ? { request } : {}),
    ...(links ? { links } : {}),
  };
}
