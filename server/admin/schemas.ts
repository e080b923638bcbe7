import { z } from 'zod';
import { budgetLimitsShape, checkLimits, subjectIdSchema, windowSchema } from '../quota/budget-schema.js';
import { scopeSchema } from '../quota/scope.js';

const nameSchema = z.string().trim().min(1).max(200);

export const createProjectBody = z.strictObject({
  id: subjectIdSchema,
  name: nameSchema.optional(),
});

export const createUserBody = z.strictObject({
  id: subjectIdSchema,
  name: nameSchema.optional(),
  projectId: subjectIdSchema.nullable().optional(),
});

export const createKeyBody = z.strictObject({
  userId: subjectIdSchema,
  name: nameSchema.default('default'),
  /** A service key (e.g. a LobeChat server's) may name the end user per request. */
  service: z.boolean().default(false),
});

export const putBudgetBody = z
  .strictObject({
    scope: scopeSchema,
    window: windowSchema,
    ...budgetLimitsShape,
  })
  .superRefine(checkLimits);

export type PutBudgetBody = z.infer<typeof putBudgetBody>;
