import { Hono, type Context } from 'hono';
import type { AppEnv } from '../http/app-env.js';
import { isRecord } from '../util/is-record.js';
import { noUpstream, type ProxyServices } from './admit-request.js';
import { GEMINI_CLIENT_KEY, GEMINI_GENERATE_METHODS, geminiGenerate, modelAndMethod } from './dialects/gemini.js';
import { geminiErrorBody, googleRefusedKey } from './dialects/gemini-errors.js';
import { renderErrorIn, renderProxyFailure } from './error-shape.js';
import { getGeminiModel, listGeminiModels } from './gemini-models.js';
import { authenticate } from './identity.js';
import { meteredRoute } from './metered-route.js';
import { invalidRequest, OpenAIError } from './openai-error.js';
import { readBodyText } from './request-body.js';
import { sendWhole } from './response-sink.js';
import { upstreamRefusal } from './upstream-answer.js';
import { callUpstream, passThroughHeaders } from './upstream-call.js';

const isGenerateMethod = (method: string): method is (typeof GEMINI_GENERATE_METHODS)[number] => (GEMINI_GENERATE_METHODS as readonly string[]).includes(method);

/** Renders whatever a Gemini route throws in Google's shape. */
const inGeminiShape =
  (handler: (c: Context) => Promise<Response>) =>
  (c: Context): Promise<Response> =>
    handler(c).catch((error: unknown) => renderProxyFailure(c, error, geminiErrorBody));

/**
 * Google's Gemini API under `/v1beta`, as @google/genai calls it (LobeChat's Google provider, and
 * its New API provider for `gemini-*` models): the model and the method are the last path segment
 * (`gemini-2.5-flash:streamGenerateContent`). Generating is metered; counting tokens is passed
 * through (Google does not bill it); the model list is the Gemini upstreams'. Every error is
 * Google's `{"error": {"code", "message", "status"}}`.
 */
export function geminiRoutes(services: ProxyServices) {
  const generate = meteredRoute(services, geminiGenerate);
  const countTokens = inGeminiShape((c) => passCountTokens(c, services));
  return new Hono<AppEnv>()
    .get('/models', inGeminiShape(listGeminiModels(services)))
    .get('/models/:model', inGeminiShape(getGeminiModel(services)))
    .post('/models/:modelAction', (c) => {
      const method = modelAndMethod(c.req.param('modelAction'))?.method ?? '';
      if (isGenerateMethod(method)) return generate(c);
      if (method === 'countTokens') return countTokens(c);
      return geminiNotFound(c);
    });
}

/**
 * `POST /v1beta/models/{model}:countTokens`, passed to the model's Gemini upstream as it came, for
 * a client with a valid key; nothing is charged. An upstream that refuses our own key is a 502 (the
 * client's key is fine).
 */
async function passCountTokens(c: Context, services: ProxyServices): Promise<Response> {
  await authenticate(c, services.store, GEMINI_CLIENT_KEY);
  const model = modelAndMethod(c.req.param('modelAction') ?? '')?.model ?? '';
  const upstream = services.upstreams.forModel(model, 'gemini');
  if (!upstream) throw noUpstream(services.upstreams, model, 'gemini');
  const body = await readBodyText(c, services.config.proxy.maxBodyBytes);
  if (!isJsonObject(body)) throw invalidRequest('The body of countTokens must be a JSON object ({"contents": […]}).');
  const response = await callUpstream(upstream, `/v1beta/models/${encodeURIComponent(model)}:countTokens`, { method: 'POST', body });
  const answer = Buffer.from(await response.body.arrayBuffer());
  const refusal = upstreamRefusal({ upstream }, response.statusCode, googleRefusedKey(response.statusCode, answer));
  if (refusal) throw refusal;
  return sendWhole(c, response.statusCode, passThroughHeaders(response.headers), answer);
}

function isJsonObject(text: string): boolean {
  try {
    return isRecord(JSON.parse(text));
  } catch {
    return false;
  }
}

/** Google's answer to a path or method under `/v1beta` that lobe-quota does not serve. */
export const geminiNotFound = (c: Context) =>
  renderErrorIn(
    c,
    new OpenAIError(404, 'invalid_request_error', 'not_found', `lobe-quota does not serve ${c.req.method} ${c.req.path}: it meters generateContent and streamGenerateContent, and passes countTokens and the model list through.`),
    geminiErrorBody,
  );
