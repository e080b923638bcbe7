import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError } from './errors.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.js';

/** "window.timeZone: unknown IANA time zone …; limitTokens: …" — every problem, each naming its field. */
export function describeZodError(error: z.ZodError, root = 'body'): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : root}: ${issue.message}`)
    .join('; ');
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError('invalid_request', describeZodError(parsed.error, root));
  return parsed.data;
}

/** Reads and validates a JSON body; broken JSON is a 400 that says so. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError('invalid_request', 'body: not valid JSON');
  }
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) throw new ApiError('invalid_request', `body: nests deeper than ${MAX_JSON_DEPTH} levels`);
  return parseWith(schema, value, 'body');
}

export const queryOf = <S extends z.ZodType>(c: Context, schema: S): z.output<S> => parseWith(schema, c.req.query(), 'query');
