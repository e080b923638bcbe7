import { z } from 'zod';
import { bearerToken } from '../../auth/secrets.js';
import { modelIdSchema } from '../request-body.js';
import type { AnswerText, ClientKey, Dialect } from './dialect.js';
import { GEMINI_ERRORS } from './gemini-errors.js';
import { geminiEvent, geminiStream, type GeminiStreamState } from './gemini-stream.js';
import { candidatesOutputText, geminiUsage } from './gemini-usage.js';

/** The methods of `/v1beta/models/{model}:{method}` that generate, and so are metered. */
export const GEMINI_GENERATE_METHODS = ['generateContent', 'streamGenerateContent'] as const;

/**
 * `gemini-2.5-flash:generateContent` (the last path segment, which holds the model and the method)
 * split in two; null when it names no method.
 */
export function modelAndMethod(segment: string): { model: string; method: string } | null {
  const colon = segment.lastIndexOf(':');
  if (colon <= 0 || colon === segment.length - 1) return null;
  return { model: segment.slice(0, colon), method: segment.slice(colon + 1) };
}

/**
 * Where Gemini clients put the key: `x-goog-api-key` (what @google/genai always sends), else the
 * `key` query parameter (LobeChat's model list, and Google's own curl examples), else a bearer
 * token. A key in the URL can end up in a reverse proxy's access log, as it can with Google's; the
 * proxy itself never logs a query string, and never sends the client's key upstream.
 */
export const GEMINI_CLIENT_KEY: ClientKey = {
  read: (request) => request.header('x-goog-api-key') ?? request.query('key') ?? bearerToken(request.header('authorization')),
  hint: 'x-goog-api-key: lq-…',
};

const generationConfigSchema = z
  .looseObject({
    maxOutputTokens: z.number().int().min(1).nullable().optional(),
    candidateCount: z.number().int().min(1).max(8).nullable().optional(),
    thinkingConfig: z.looseObject({ includeThoughts: z.boolean().nullable().optional(), thinkingBudget: z.number().int().nullable().optional() }).nullable().optional(),
  })
  .nullable()
  .optional();

/**
 * Whether the model may think without the client seeing it: Gemini 2.5 and later think unless told
 * not to (`thinkingBudget: 0`) and send their thoughts only when asked (`includeThoughts`). Such
 * thoughts are billed as output but never reach the relay to be counted, so the request holds its
 * whole (clamped) allowance. LobeChat asks for the thoughts.
 */
export function thinksUnseen(config: z.infer<typeof generationConfigSchema>): boolean {
  const thinking = config?.thinkingConfig;
  return thinking?.includeThoughts !== true && thinking?.thinkingBudget !== 0;
}

/**
 * What the proxy reads of a `generateContent` request; everything else passes through untouched.
 * `model`, `method` and `alt` come from the URL (see `fromUrl`), laid over the body.
 */
export const geminiRequestSchema = z
  .looseObject({
    model: modelIdSchema,
    method: z.enum(GEMINI_GENERATE_METHODS),
    alt: z.string().optional(),
    contents: z.array(z.unknown()).min(1),
    generationConfig: generationConfigSchema,
  })
  .refine((request) => request.method !== 'streamGenerateContent' || request.alt === 'sse', {
    path: ['alt'],
    message: 'lobe-quota streams Gemini answers as server-sent events only: call streamGenerateContent with ?alt=sse (as @google/genai does)',
  });

export type GeminiRequest = z.infer<typeof geminiRequestSchema>;

/** The fields the URL carries: they name the call, and are not part of the upstream's body. */
const URL_FIELDS = new Set(['model', 'method', 'alt']);

/**
 * The body sent upstream: the client's (as parsed), with `generationConfig.maxOutputTokens` clamped
 * to the budget's room per candidate, and set when the client left it out: the model's own cap may
 * be above the one the proxy knows (a model the price book lacks gets a default), and a whole
 * answer must not run past its hold. Thoughts count against it upstream, as they are billed as output.
 */
export function upstreamGeminiBody(request: GeminiRequest, outputLimit: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(request)) if (!URL_FIELDS.has(field)) body[field] = value;
  const config = request.generationConfig ?? {};
  const perCandidate = Math.max(1, Math.floor(outputLimit / (config.candidateCount ?? 1)));
  const asked = config.maxOutputTokens;
  body.generationConfig = { ...config, maxOutputTokens: typeof asked === 'number' ? Math.min(asked, perCandidate) : perCandidate };
  return body;
}

/** A whole answer with this text, as `generateContent` gives one (a stream's single chunk too). */
export function geminiAnswer({ id, text, model }: AnswerText) {
  return {
    candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 0, totalTokenCount: 0 },
    modelVersion: model,
    responseId: id,
  };
}

/**
 * `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`, Google's
 * Gemini API as @google/genai (and so LobeChat's Google provider) calls it. The upstream path
 * carries `/v1beta`: a Gemini upstream's base URL is Google's origin, as the SDK takes it.
 */
export const geminiGenerate: Dialect<GeminiRequest, GeminiStreamState> = {
  name: 'gemini',
  api: 'gemini',
  clientKey: GEMINI_CLIENT_KEY,
  fromUrl: ({ params, query }) => {
    const named = modelAndMethod(params.modelAction ?? '');
    return { model: named?.model, method: named?.method, alt: query('alt') };
  },
  requestSchema: geminiRequestSchema,
  admissionFacts: (request, outputCapOf) => {
    const config = request.generationConfig ?? {};
    return {
      model: request.model,
      bodyUser: undefined,
      // Every candidate may produce the whole limit.
      wantOutput: (config.maxOutputTokens ?? outputCapOf(request.model)) * (config.candidateCount ?? 1),
      streaming: request.method === 'streamGenerateContent',
      hiddenOutput: thinksUnseen(config),
      downgradable: true,
      prompt: { kind: 'gemini', body: request },
    };
  },
  upstreamPath: (request, { model, assemble }) =>
    `/v1beta/models/${encodeURIComponent(model)}:${request.method === 'streamGenerateContent' || assemble ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
  upstreamBody: (request, { outputLimit }) => upstreamGeminiBody(request, outputLimit),
  usageField: 'usageMetadata',
  usageOf: geminiUsage,
  answerOutputText: (answer) => candidatesOutputText((answer as { candidates?: unknown }).candidates),
  stream: geminiStream,
  ...GEMINI_ERRORS,
  refusalAnswer: { whole: geminiAnswer, events: (answer) => geminiEvent(geminiAnswer(answer)) },
};
