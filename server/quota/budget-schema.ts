import { z } from 'zod';
import { modelKeySchema } from '../util/model-pattern.js';
import { isValidTimeZone } from './window.js';

/** Ids of users and projects: readable, URL- and scope-safe (no ':' so `user:ID` parses). */
export const subjectIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/, {
    message: 'must be 1-128 characters of letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit',
  });

export const timeZoneSchema = z.string().refine(isValidTimeZone, {
  error: (issue) => `unknown IANA time zone ${JSON.stringify(issue.input)} (e.g. "UTC", "Asia/Shanghai")`,
});

const calendarWindowSchema = (kind: 'day' | 'week' | 'month') =>
  z.strictObject({ kind: z.literal(kind), timeZone: timeZoneSchema.default('UTC') });

export const windowSchema = z.discriminatedUnion('kind', [
  calendarWindowSchema('day'),
  calendarWindowSchema('week'),
  calendarWindowSchema('month'),
  z.strictObject({
    kind: z.literal('rolling'),
    hours: z.number().int().min(1).max(24 * 366),
  }),
  z.strictObject({ kind: z.literal('total') }),
]);

export const thresholdsSchema = z
  .array(z.number().int().min(1).max(1000))
  .max(20)
  .refine((t) => t.every((v, i) => i === 0 || v > (t[i - 1] as number)), {
    message: 'must be strictly increasing percentages',
  });

export const onLimitSchema = z.enum(['reject', 'downgrade', 'alert-only']);

const MAX_MODELS_CHARS = 1_000;

/**
 * Model ids or globs (`gpt-5*`) a budget counts and limits alone; absent: every model. Kept sorted
 * and distinct, because the set is part of the budget's identity (one budget per scope, period and
 * set of models).
 */
export const budgetModelsSchema = z
  .array(modelKeySchema.refine((m) => !m.includes(','), { message: 'must not hold a comma (the budget names its models as a list)' }))
  .min(1, 'must name at least one model (leave "models" out for a budget on every model)')
  .max(50)
  // The list is part of the budget's identity, a key the stores index: bounded.
  .refine((models) => models.join(',').length <= MAX_MODELS_CHARS, { message: `must be at most ${MAX_MODELS_CHARS} characters together` })
  .transform((models) => [...new Set(models)].sort());

/** At or past `at` percent of the budget, a request for a model it covers is served by `to` instead. */
export const fallbackRuleSchema = z.strictObject({
  at: z.number().int().min(1).max(1000),
  to: modelKeySchema.refine((m) => !m.includes('*'), { message: 'must be one model id, not a glob' }),
});

export const fallbackSchema = z
  .array(fallbackRuleSchema)
  .max(10)
  .refine((rules) => rules.every((r, i) => i === 0 || r.at > (rules[i - 1] as { at: number }).at), {
    message: 'rules must be in strictly increasing order of "at"',
  });

const MAX_TOKENS = 1e15;
const MAX_USD = 1e9;

/** The limits of a budget, shared by config defaults and the admin API. */
export const budgetLimitsShape = {
  limitTokens: z.number().int().min(0).max(MAX_TOKENS).nullable().default(null),
  limitUsd: z.number().min(0).max(MAX_USD).nullable().default(null),
  thresholds: thresholdsSchema.optional(),
  onLimit: onLimitSchema.default('reject'),
  downgradeTo: z.string().min(1).max(200).optional(),
  models: budgetModelsSchema.optional(),
  fallback: fallbackSchema.optional(),
};

interface LimitsInput {
  limitTokens: number | null;
  limitUsd: number | null;
  onLimit: z.infer<typeof onLimitSchema>;
  downgradeTo?: string | undefined;
  fallback?: ReadonlyArray<{ at: number; to: string }> | undefined;
}

/** Checks shared by every budget definition; registered with `.superRefine`. */
export function checkLimits(b: LimitsInput, ctx: z.RefinementCtx): void {
  if (b.limitTokens === null && b.limitUsd === null) {
    ctx.addIssue({ code: 'custom', path: ['limitTokens'], message: 'a budget needs limitTokens or limitUsd (or both)' });
  }
  if (b.onLimit === 'downgrade' && !b.downgradeTo) {
    ctx.addIssue({ code: 'custom', path: ['downgradeTo'], message: 'onLimit "downgrade" needs the model to downgrade to' });
  }
  if (b.fallback?.length && b.onLimit === 'downgrade') {
    ctx.addIssue({ code: 'custom', path: ['fallback'], message: 'use either "fallback" rules or onLimit "downgrade" (its shorthand: [{"at": 100, "to": downgradeTo}]), not both' });
  }
  if (b.fallback?.length && b.onLimit === 'alert-only') {
    ctx.addIssue({ code: 'custom', path: ['fallback'], message: 'an "alert-only" budget never limits, so its fallback rules would never apply' });
  }
}

export type WindowInput = z.infer<typeof windowSchema>;
