import { z } from 'zod';
import type { QuotaStatus } from '../quota/status-report.js';

/**
 * The `/quota` answer as a zod schema, for the OpenAPI document only: status-report.ts builds it
 * from plain TypeScript types, which cannot be turned into JSON Schema. Strict (unlike the MCP
 * output schema, which must tolerate fields added later) so that the test comparing it with the
 * real answer catches any field the document forgot; the type checks below keep it in step with
 * `QuotaStatus` at compile time.
 */
const levelSchema = z.enum(['normal', 'warning', 'critical', 'exceeded']);

const windowSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.enum(['day', 'week', 'month']), timeZone: z.string().describe('IANA time zone') }),
  z.strictObject({ kind: z.literal('rolling'), hours: z.number().int() }),
  z.strictObject({ kind: z.literal('total') }),
]);

export const budgetStatusSchema = z.strictObject({
  id: z.string(),
  source: z.enum(['admin', 'config']).describe('admin: set with PUT /admin/budgets; config: a default from the config file'),
  scope: z.string().describe('global, project:ID, user:ID or key:ID'),
  window: windowSpecSchema,
  usedTokens: z.number(),
  reservedTokens: z.number().describe('held by requests still running'),
  limitTokens: z.number().nullable(),
  remainingTokens: z.number().nullable(),
  usedUsd: z.number(),
  reservedUsd: z.number(),
  limitUsd: z.number().nullable(),
  remainingUsd: z.number().nullable(),
  percentage: z.number().describe('of the unit nearest to its limit'),
  status: levelSchema,
  resetsAt: z.string().nullable().describe('ISO 8601 with the window’s offset; null for rolling and all-time windows'),
  onLimit: z.string().describe('reject, downgrade or alert-only'),
});

export const quotaStatusSchema = z.strictObject({
  subject: z.strictObject({ kind: z.enum(['global', 'project', 'user', 'key']), id: z.string(), name: z.string() }),
  usage: z.number().nullable().describe('used in the binding budget (the one nearest to its limit); null without budgets'),
  limit: z.number().nullable(),
  unit: z.enum(['tokens', 'usd']).nullable(),
  percentage: z.number().nullable(),
  remaining: z.number().nullable().describe('limit minus used minus held by running requests'),
  status: levelSchema,
  nextReset: z.string().nullable(),
  budgets: z.array(budgetStatusSchema).describe('every budget that applies, narrowest scope first'),
});

/** The admin token's `GET /quota`: every subject. */
export const quotaStatusListSchema = z.strictObject({ subjects: z.array(quotaStatusSchema) });

// Compile-time: the schema and the type accept exactly the same values (both directions).
type Mirror = z.infer<typeof quotaStatusSchema>;
export const quotaStatusMatchesType: [(s: QuotaStatus) => Mirror, (s: Mirror) => QuotaStatus] = [(s) => s, (s) => s];
