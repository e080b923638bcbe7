import { z } from 'zod';

/** What the admin, quota and metrics routes answer on any error (server/http/errors.ts). */
export const apiErrorSchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(['invalid_request', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'payload_too_large', 'internal_error', 'unavailable']),
    message: z.string().describe('names the field at fault, e.g. "window.timeZone: unknown IANA time zone …"'),
  }),
});

/** OpenAI's own error shape, which every `/v1` error takes so that SDKs and LobeChat show it. */
export const openAIErrorSchema = z.looseObject({
  error: z.looseObject({
    message: z.string(),
    type: z.string().describe('e.g. insufficient_quota, invalid_request_error'),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});

/** Ollama's error shape, which every `/ollama` error takes so that ollama-js and LobeChat show it. */
/** Anthropic's error answer, as the Messages routes write every error and refusal. */
export const anthropicErrorSchema = z.strictObject({
  type: z.literal('error'),
  error: z.strictObject({
    type: z.string().describe('invalid_request_error, authentication_error, permission_error, not_found_error, request_too_large, rate_limit_error (refusals too), api_error, timeout_error'),
    message: z.string().describe('what went wrong; for a refusal, the budget, its usage, limit and reset'),
  }),
});

/** Google's error answer, as the Gemini routes write every error and refusal. */
export const googleErrorSchema = z.strictObject({
  error: z.looseObject({
    code: z.number().int().describe('the HTTP status'),
    message: z.string().describe('what went wrong; for a refusal, the budget, its usage, limit and reset'),
    status: z.string().describe('INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED (refusals too), INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED'),
  }),
});

export const ollamaErrorSchema = z.strictObject({
  error: z.string().describe('what went wrong; for a refusal, the budget, its usage, limit and reset'),
});

/** The LobeChat plugin SDK's error answer (`createErrorResponse`). */
export const pluginErrorSchema = z.looseObject({
  errorType: z.string().describe('e.g. PluginSettingsInvalid, PluginApiParamsError'),
  body: z.looseObject({ message: z.string() }),
});

/** A JSON-RPC error, as `/mcp` answers before the MCP server is reached. */
export const jsonRpcErrorSchema = z.looseObject({
  jsonrpc: z.literal('2.0'),
  error: z.looseObject({ code: z.number().int(), message: z.string() }),
  id: z.null(),
});
