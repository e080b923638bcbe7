import type { Context } from 'hono';
import type { z } from 'zod';
import { describeZodError } from '../http/validate.js';
import { invalidRequest } from './openai-error.js';

/**
 * Parses and checks a `/v1` JSON body (its size is bounded earlier, by the body-limit middleware).
 * Problems are 400s in OpenAI's shape whose `param` names the first bad field.
 */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest('We could not parse the JSON body of your request: it is not valid JSON.');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw invalidRequest(`Invalid request: ${describeZodError(parsed.error)}`, first && first.path.length > 0 ? first.path.map(String).join('.') : null);
  }
  return parsed.data;
}
