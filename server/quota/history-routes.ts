import { Hono, type Context } from 'hono';
import { DateTime } from 'luxon';
import { z } from 'zod';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { queryOf } from '../http/validate.js';
import { usageJson } from '../reports/usage-report.js';
import { localDays } from '../store/sql/local-day.js';
import type { LedgerEntry } from '../store/types.js';
import { timeZoneSchema } from './budget-schema.js';
import { scopeSchema } from './scope.js';
import { microsToUsd } from './status.js';

const DAY_MS = 86_400_000;
/** A year and a day: enough for "this year so far" in any zone, bounded for a caller with a key. */
const MAX_RANGE_MS = 367 * DAY_MS;
/** Days in the default range: the last 30 local days, today included. */
const DEFAULT_DAYS = 30;

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const ownUsageQuerySchema = z.strictObject({
  from: instant.optional().describe('ISO 8601 with offset; default: the start of the local day 29 days ago in tz'),
  to: instant.optional().describe('ISO 8601 with offset, exclusive; default: now'),
  tz: timeZoneSchema.default('UTC').describe('the IANA time zone of the days, e.g. the binding budget’s; default UTC'),
});

export const ownLedgerQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('at most this many, newest first (default 20, at most 100)'),
});

/**
 * One settled request as its own user may see it: what it cost and how it ended. Never text (the
 * ledger holds none), and not the session or tags a client attached either.
 */
export const ownEntryView = (e: LedgerEntry) => ({
  at: new Date(e.at).toISOString(),
  model: e.model,
  inputTokens: e.inputTokens,
  outputTokens: e.outputTokens,
  cachedTokens: e.cachedTokens,
  reasoningTokens: e.reasoningTokens,
  totalTokens: e.inputTokens + e.outputTokens,
  costUsd: microsToUsd(e.costMicros),
  outcome: e.outcome,
  source: e.source,
});

/**
 * The user a history route names: `user:ID` or a bare id. A user key may name only its own user,
 * with the same answer whether or not another user exists (as `GET /quota/:subject`); the admin
 * token any user there is.
 */
async function historyUser(c: Context<AppEnv>, { store }: Pick<Services, 'store'>): Promise<string> {
  const text = c.req.param('subject') ?? '';
  const parsed = scopeSchema.safeParse(text.includes(':') || text === 'global' ? text : `user:${text}`);
  if (!parsed.success) throw new ApiError('invalid_request', `subject: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const scope = parsed.data;
  if (scope.kind !== 'user') throw new ApiError('invalid_request', 'subject: a history is kept per user: use user:ID (or the bare id)');
  const caller = c.get('caller');
  if (caller.kind === 'user') {
    if (scope.id !== caller.identity.user.id) throw new ApiError('forbidden', 'a user key can only read its own history');
  } else if (!(await store.getUser(scope.id))) {
    throw new ApiError('not_found', `subject: no user ${JSON.stringify(scope.id)}`);
  }
  return scope.id;
}

/**
 * `GET /quota/:subject/usage` (a user's usage by local day and model) and `GET /quota/:subject/ledger`
 * (their newest requests): what the user's own page (`/me`) draws beside the card. Mounted under
 * `/quota`, after its authentication: a user key reads its own user's, the admin token anyone's.
 */
export function historyRoutes({ store, clock }: Pick<Services, 'store' | 'clock'>) {
  return new Hono<AppEnv>()
    .get('/:subject/usage', async (c) => {
      const userId = await historyUser(c, { store });
      const q = queryOf(c, ownUsageQuerySchema);
      const now = clock.now();
      const to = q.to ?? now + 1;
      const from = q.from ?? DateTime.fromMillis(now, { zone: q.tz }).startOf('day').minus({ days: DEFAULT_DAYS - 1 }).toMillis();
      if (from >= to) throw new ApiError('invalid_request', 'from: must be before to');
      if (to - from > MAX_RANGE_MS) throw new ApiError('invalid_request', 'from: a history covers at most 367 days; narrow from/to');
      const rows = await store.usageReport({ groupBy: ['day', 'model'], from, to, timeZone: q.tz, userId });
      return c.json({ subject: `user:${userId}`, timeZone: q.tz, days: localDays(from, to, q.tz).map((d) => d.day), ...usageJson(['day', 'model'], from, to, rows) });
    })
    .get('/:subject/ledger', async (c) => {
      const userId = await historyUser(c, { store });
      const q = queryOf(c, ownLedgerQuerySchema);
      return c.json({ subject: `user:${userId}`, entries: (await store.recentEntries(q.limit, userId)).map(ownEntryView) });
    });
}
