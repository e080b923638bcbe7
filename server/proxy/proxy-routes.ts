import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from '../http/app-env.js';
import type { ProxyServices } from './admit-request.js';
import { chatCompletions } from './chat-completions.js';
import { embeddings } from './embeddings.js';
import { models } from './models.js';
import { OpenAIError, renderOpenAIError } from './openai-error.js';
import { responses } from './responses.js';

/** The OpenAI-compatible surface under `/v1`. Errors here always take OpenAI's shape. */
export function proxyRoutes(services: ProxyServices) {
  const maxBytes = services.config.proxy.maxBodyBytes;
  return new Hono<AppEnv>()
    .use(
      '*',
      bodyLimit({
        maxSize: maxBytes,
        onError: (c) =>
          renderOpenAIError(c, new OpenAIError(413, 'invalid_request_error', 'request_too_large', `The request body is larger than ${maxBytes} bytes.`)),
      }),
    )
    .post('/responses', responses(services))
    .post('/embeddings', embeddings(services))
    .get('/models', models(services))
    .post('/chat/completions', chatCompletions(services));
}

/** OpenAI's answer to a path it does not know. */
export const proxyNotFound = (c: Context) =>
  renderOpenAIError(c, new OpenAIError(404, 'invalid_request_error', null, `Invalid URL (${c.req.method} ${c.req.path})`));
