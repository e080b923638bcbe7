import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { z } from 'zod';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../http/json-depth.js';
import { describeZodError } from '../http/validate.js';
import { invalidRequest, OpenAIError } from './openai-error.js';

const tooLarge = (maxBytes: number) =>
  new OpenAIError(413, 'invalid_request_error', 'request_too_large', `The request body is larger than ${maxBytes} bytes.`);

/** A chunked body of unknown length, read from the socket until it ends or passes the limit. */
function readLimited(incoming: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        incoming.removeAllListeners('data');
        incoming.resume(); // drain the rest unread, so the 413 can still be sent
        reject(tooLarge(maxBytes));
      } else {
        chunks.push(chunk);
      }
    });
    incoming.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    incoming.once('error', reject);
  });
}

/**
 * The request body as text, at most `maxBytes`. A declared Content-Length is checked before
 * reading; the body is then read by @hono/node-server's direct path, without building a web
 * Request and its stream for every call (which a body-limit middleware would).
 */
export async function readBodyText(c: Context, maxBytes: number): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined) {
    if (Number(declared) > maxBytes) throw tooLarge(maxBytes);
    return c.req.text();
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) return readLimited(incoming, maxBytes);
  const text = await c.req.text();
  if (Buffer.byteLength(text) > maxBytes) throw tooLarge(maxBytes);
  return text;
}

/**
 * The longest model id a request may name. Real ids are short (the longest of OpenAI's are ~40
 * characters, fine-tunes ~100); a longer one is not a model, and each distinct id costs memory in
 * caches and metric labels.
 */
export const MAX_MODEL_ID_LENGTH = 256;

/** The `model` field of every `/v1` request. */
export const modelIdSchema = z.string().min(1).max(MAX_MODEL_ID_LENGTH, `must be at most ${MAX_MODEL_ID_LENGTH} characters`);

/**
 * Reads, parses and checks a `/v1` JSON body. Problems are 400s in OpenAI's shape whose `param`
 * names the first bad field; a body over the limit is a 413, one nested too deep a 400.
 */
export async function readJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  maxBytes: number,
  /** Fields the request's URL carries (see Dialect.fromUrl), laid over the body's. */
  fromUrl?: Record<string, unknown>,
  /** The schema's output for the usual request, without zod, or null to ask the schema (see Dialect.quickParse). */
  quickParse?: (value: unknown) => z.output<S> | null,
): Promise<{ request: z.output<S>; bytes: number }> {
  const text = await readBodyText(c, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest('We could not parse the JSON body of your request: it is not valid JSON.');
  }
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) {
    throw invalidRequest(`The JSON body of your request nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels.`, null, 'body_too_deep');
  }
  if (fromUrl && typeof value === 'object' && value !== null && !Array.isArray(value)) value = { ...value, ...fromUrl };
  // Bytes as UTF-16 code units: the same order as the bytes, without a pass over the text to count them.
  const quick = quickParse?.(value);
  if (quick) return { request: quick, bytes: text.length };
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw invalidRequest(`Invalid request: ${describeZodError(parsed.error)}`, first && first.path.length > 0 ? first.path.map(String).join('.') : null);
  }
  return { request: parsed.data, bytes: text.length };
}
