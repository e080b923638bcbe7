import { z } from 'zod';
import type { QuotaStatus } from './status-report.js';

/**
 * The `/quota` answer as zod schemas. status-report.ts builds it from plain TypeScript types, which
 * cannot be turned into JSON Schema; these can. Two variants of the same shape:
 * - `strict`, for the OpenAPI document and its test, which must notice any field it forgot;
 * - `loose`, for MCP's output schema: clients validate structured content against it, and a field
 *   added to `/quota` later must not make every call fail.
 * The type checks at the bottom keep the strict one in step with `QuotaStatus` at compile time.
 */
function quotaSchemas(mode: 'strict' | 'loose') {
  const object = <S extends z.ZodRawShape>(shape: S) => (mode === 'strict' ? z.strictObject(shape) : z.looseObject(shape));
  const level = z.enum(['normal', 'warning', 'critical', 'exceeded']);
  const window = z.discriminatedUnion('kind', [
    object({ kind: z.enum(['day', 'week', 'month']), timeZone: z.string().describe('IANA time zone') }),
    object({ kind: z.literal('rolling'), hours: z.number().int() }),
    object({ kind: z.literal('total') }),
  ]);
  const budget = object({
    id: z.string(),
    source: z.enum(['admin', 'config']).describe('admin: set with PUT /admin/budgets; config: a default from the config file'),
    scope: z.string().describe('global, project:ID, user:ID, key:ID or upstream:NAME'),
    window,
    usedTokens: z.number(),
    reservedTokens: z.number().describe('held by requests still running'),
    limitTokens: z.number().nullable(),
    remainingTokens: z.number().nullable(),
    usedUsd: z.number(),
    reservedUsd: z.number(),
    limitUsd: z.number().nullable(),
    remainingUsd: z.number().nullable(),
    percentage: z.number().describe('of the unit nearest to its limit; one decimal'),
    status: level,
    resetsAt: z.string().nullable().describe('ISO 8601 with the window’s offset; null for rolling and all-time windows'),
    onLimit: z.string().describe('reject, downgrade or alert-only'),
    models: z.array(z.string()).nullable().optional().describe('the model ids or globs it alone counts and limits; null: every model'),
    fallback: z
      .array(object({ at: z.number().int(), to: z.string() }))
      .optional()
      .describe('at or past `at` percent, a request for a model it covers is served by `to` (downgrade reads as one rule at 100)'),
    grantedTokens: z.number().optional().describe('what the grants in force add (limitTokens includes it); only on a budget with grants'),
    grantedUsd: z.number().optional().describe('what the grants in force add (limitUsd includes it); only on a budget with grants'),
    grants: z
      .array(object({ id: z.string(), tokens: z.number(), usd: z.number(), decidedBy: z.string(), endsAt: z.string(), reason: z.string().nullable() }))
      .optional()
      .describe('the grants in force, each ending with its window (or an earlier date)'),
  });
  const status = object({
    subject: object({ kind: z.enum(['global', 'project', 'user', 'key', 'upstream']), id: z.string(), name: z.string() }),
    usage: z.number().nullable().describe('used in the binding budget (the one nearest to its limit: highest status, then percentage); null without budgets'),
    limit: z.number().nullable(),
    unit: z.enum(['tokens', 'usd']).nullable(),
    percentage: z.number().nullable(),
    remaining: z.number().nullable().describe('limit minus used minus held by running requests'),
    status: level.describe(
      'normal, warning (from 80 %), critical (from 95 %) or exceeded (100 %), of used plus held by running requests; only used reaches exceeded',
    ),
    nextReset: z.string().nullable().describe('ISO 8601 with offset; null when the binding budget has no fixed reset'),
    budgets: z.array(budget).describe('every budget that applies: key, user, project and global, narrowest first'),
  });
  return { budget, status };
}

export const { budget: budgetStatusSchema, status: quotaStatusSchema } = quotaSchemas('strict');
export const { budget: budgetStatusLooseSchema, status: quotaStatusLooseSchema } = quotaSchemas('loose');

/** The admin token's `GET /quota`: every subject. */
export const quotaStatusListSchema = z.strictObject({ subjects: z.array(quotaStatusSchema) });

// Compile-time: the strict schema and the type accept exactly the same values (both directions).
type Mirror = z.infer<typeof quotaStatusSchema>;
export const quotaStatusMatchesType: [(s: QuotaStatus) => Mirror, (s: Mirror) => QuotaStatus] = [(s) => s, (s) => s];
