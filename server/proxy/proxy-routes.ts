import { Hono, type Context } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import type { ProxyServices } from './admit-request.js';
import { chatCompletions } from './chat-completions.js';
import { embeddings } from './embeddings.js';
import { models } from './models.js';
import { OpenAIError, renderOpenAIError } from './openai-error.js';
import { responses } from './responses.js';

/**
 * The OpenAI-compatible surface under `/v1`. Errors here always take OpenAI's shape. Bodies are
 * bounded where they are read (request-body.ts), not by a middleware on the hot path.
 */
export function proxyRoutes(services: ProxyServices) {
  return new Hono<AppEnv>()
    .post('/responses', responses(services))
    .post('/embeddings', embeddings(services))
    .get('/models', models(services))
    .post('/chat/completions', chatCompletions(services));
}

/** OpenAI's answer to a path it does not know. */
export const proxyNotFound = (c: Context) =>
  renderOpenAIError(c, new OpenAIError(404, 'invalid_request_error', null, `Invalid URL (${c.req.method} ${c.req.path})`));
