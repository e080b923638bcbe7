import { z } from 'zod';
import { budgetLimitsShape, checkLimits, subjectIdSchema, windowSchema } from '../quota/budget-schema.js';
import { scopeSchema } from '../quota/scope.js';

const nameSchema = z.string().trim().min(1).max(200);

export const createProjectBody = z.strictObject({
  id: subjectIdSchema,
  name: nameSchema.optional(),
});

/**
 * Another system's id for a person (e.g. LobeChat's `user_2ab…`), which a service key may name. The
 * rules of a user id: a name a service key sends is checked against them before it is looked up.
 */
export const externalIdSchema = subjectIdSchema.describe('another system’s id for this person, e.g. LobeChat’s user_2ab…');

/** `PATCH /admin/projects/:id`: a new name (the id never changes: scopes and the ledger name it). */
export const patchProjectBody = z.strictObject({ name: nameSchema });

export const createUserBody = z.strictObject({
  id: subjectIdSchema,
  name: nameSchema.optional(),
  projectId: subjectIdSchema.nullable().optional(),
  externalIds: z
    .array(externalIdSchema)
    .max(100)
    .optional()
    .describe('ids a service key may name this user by (each linked to one user only)'),
});

/** `PATCH /admin/users/:id`: rename, and/or move to another project (null: none). */
export const patchUserBody = z
  .strictObject({
    name: nameSchema.optional(),
    projectId: subjectIdSchema.nullable().optional().describe('the project to move the user to; null: no project'),
  })
  .refine((b) => b.name !== undefined || b.projectId !== undefined, { message: 'give name or projectId (or both)', path: ['name'] });

export const linkExternalIdBody = z.strictObject({ externalId: externalIdSchema });

/** null: the config's `proxy.refusalStyle`. */
export const refusalStyleSchema = z
  .enum(['error', 'answer'])
  .nullable()
  .describe('how refusals on chat endpoints reach this key: an HTTP error, or an assistant answer stating it; null: the config’s proxy.refusalStyle');

export const createKeyBody = z.strictObject({
  userId: subjectIdSchema,
  name: nameSchema.default('default'),
  /** A service key (e.g. a LobeChat server's) may name the end user per request. */
  service: z.boolean().default(false),
  refusalStyle: refusalStyleSchema.default(null),
});

export const patchKeyBody = z.strictObject({ refusalStyle: refusalStyleSchema });

export const putBudgetBody = z
  .strictObject({
    scope: scopeSchema,
    window: windowSchema,
    ...budgetLimitsShape,
  })
  .superRefine(checkLimits);

export type PutBudgetBody = z.infer<typeof putBudgetBody>;
