import { Hono, type Context } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import type { ProxyServices } from './admit-request.js';
import { anthropicMessages, countTokensRequestSchema } from './dialects/anthropic-messages.js';
import { openAIChat } from './dialects/openai-chat.js';
import { openAIEmbeddings } from './dialects/openai-embeddings.js';
import { openAIResponses } from './dialects/openai-responses.js';
import { openAIErrorBody, renderErrorIn } from './error-shape.js';
import { meteredRoute } from './metered-route.js';
import { models } from './models.js';
import { OpenAIError } from './openai-error.js';
import { passedThrough } from './passed-through.js';

/**
 * The route table of the proxy's APIs under `/v1`: each metered path is one dialect run by the
 * metered route, which answers its errors in that dialect's shape. Bodies are bounded where they
 * are read (request-body.ts), not by a middleware on the hot path.
 */
export function proxyRoutes(services: ProxyServices, metered: MeteredRoutes = meteredRoutes(services)) {
  return new Hono<AppEnv>()
    .post('/responses', metered['/responses'])
    .post('/embeddings', metered['/embeddings'])
    .get('/models', models(services))
    .post('/chat/completions', metered['/chat/completions'])
    .post('/messages', metered['/messages'])
    .post('/messages/count_tokens', passedThrough(services, anthropicMessages, countTokensRequestSchema, () => '/v1/messages/count_tokens'));
}

/** The metered routes under `/v1`, by path: the app serves them through Hono and straight from Node (http/node-listener.ts). */
export function meteredRoutes(services: ProxyServices) {
  return {
    '/responses': meteredRoute(services, openAIResponses),
    '/embeddings': meteredRoute(services, openAIEmbeddings),
    '/chat/completions': meteredRoute(services, openAIChat),
    '/messages': meteredRoute(services, anthropicMessages),
  };
}

export type MeteredRoutes = ReturnType<typeof meteredRoutes>;

/** OpenAI's answer to a path it does not know. */
export const proxyNotFound = (c: Context) =>
  renderErrorIn(c, new OpenAIError(404, 'invalid_request_error', null, `Invalid URL (${c.req.method} ${c.req.path})`), openAIErrorBody);
