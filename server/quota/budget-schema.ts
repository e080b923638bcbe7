import { z } from 'zod';
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

const MAX_TOKENS = 1e15;
const MAX_USD = 1e9;

/** The limits of a budget, shared by config defaults and the admin API. */
export const budgetLimitsShape = {
  limitTokens: z.number().int().min(0).max(MAX_TOKENS).nullable().default(null),
  limitUsd: z.number().min(0).max(MAX_USD).nullable().default(null),
  thresholds: thresholdsSchema.optional(),
  onLimit: onLimitSchema.default('reject'),
  downgradeTo: z.string().min(1).max(200).optional(),
};

interface LimitsInput {
  limitTokens: number | null;
  limitUsd: number | null;
  onLimit: z.infer<typeof onLimitSchema>;
  downgradeTo?: string | undefined;
}

/** Checks shared by every budget definition; registered with `.superRefine`. */
export function checkLimits(b: LimitsInput, ctx: z.RefinementCtx): void {
  if (b.limitTokens === null && b.limitUsd === null) {
    ctx.addIssue({ code: 'custom', path: ['limitTokens'], message: 'a budget needs limitTokens or limitUsd (or both)' });
  }
  if (b.onLimit === 'downgrade' && !b.downgradeTo) {
    ctx.addIssue({ code: 'custom', path: ['downgradeTo'], message: 'onLimit "downgrade" needs the model to downgrade to' });
  }
}

export type WindowInput = z.infer<typeof windowSchema>;
