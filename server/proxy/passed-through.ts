import type { Context } from 'hono';
import type { z } from 'zod';
import type { ProxyServices } from './admit-request.js';
import type { Dialect } from './dialects/dialect.js';
import { renderProxyFailure } from './error-shape.js';
import { authenticate } from './identity.js';
import { OpenAIError } from './openai-error.js';
import { readJsonBody } from './request-body.js';
import { sendWhole } from './response-sink.js';
import { API_TITLES } from './upstream-api.js';
import { upstreamRefusal } from './upstream-answer.js';
import { callUpstream, forwardedHeaders, passThroughHeaders } from './upstream-call.js';

/** What an unmetered call needs of its dialect: who may call, where the key and headers go, the error shape. */
export type PassThroughFormat = Pick<Dialect<unknown>, 'api' | 'clientKey' | 'forwardedHeaders' | 'answerHeaderPrefixes' | 'errorBody' | 'fromUrl'>;

/**
 * A call that costs no tokens (counting a prompt's tokens), passed to an upstream that serves the
 * model in the same API: a lobe-quota key is required, the upstream's own key goes upstream, and
 * the answer comes back as it is. Nothing is metered or recorded.
 */
export function passedThrough<S extends z.ZodType<{ model: string }>>(services: ProxyServices, format: PassThroughFormat, schema: S, upstreamPath: (request: z.output<S>) => string) {
  return async function passedThrough(c: Context): Promise<Response> {
    try {
      await authenticate(c, services.store, format.clientKey);
      const fromUrl = format.fromUrl?.({ params: c.req.param(), query: (name) => c.req.query(name) });
      const { request } = await readJsonBody(c, schema, services.config.proxy.maxBodyBytes, fromUrl);
      const upstream = services.upstreams.forModel(request.model, format.api);
      if (!upstream) throw new OpenAIError(404, 'invalid_request_error', 'model_not_found', `No upstream serves the model \`${request.model}\` through the ${API_TITLES[format.api]} API here.`, 'model');
      const headers = forwardedHeaders(c, format.forwardedHeaders);
      const response = await callUpstream(upstream, upstreamPath(request), { method: 'POST', body: JSON.stringify(request), ...(headers ? { headers } : {}) });
      const body = Buffer.from(await response.body.arrayBuffer());
      const refusal = upstreamRefusal({ upstream }, response.statusCode);
      if (refusal) throw refusal;
      return sendWhole(c, response.statusCode, passThroughHeaders(response.headers, format.answerHeaderPrefixes), body);
    } catch (error) {
      return renderProxyFailure(c, error, format.errorBody);
    }
  };
}
