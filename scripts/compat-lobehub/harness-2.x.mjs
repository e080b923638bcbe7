// LobeHub 2.x (@lobehub/lobehub) pieces that talk to lobe-quota, bundled from its npm tarball:
// the browser's chat client (fetchSSE and its error parser), the server's chat route with its
// model runtimes (LobeOpenAI, Chat Completions and Responses; the New API router with its Anthropic
// and Google runtimes), its model-list route, its error responder, and the MCP service with its
// content processing. Only what a test cannot run (login, database, file storage) is stubbed; see
// scripts/compat-lobehub/stubs.
import { fetchSSE } from '@lobechat/fetch-sse';
import i18next from 'i18next';
import { DEFAULT_MODEL_PROVIDER_LIST } from 'model-bank/modelProviders';
import { POST as chatRoute } from '@/app/(backend)/webapi/chat/[provider]/route';
import { GET as modelsRoute } from '@/app/(backend)/webapi/models/[provider]/route';
import { mcpService } from '@/server/services/mcp';
import { processContentBlocks } from '@/server/services/mcp/contentProcessor';
import errorLocale from 'lobehub:locales/en-US/error.json';
import { session } from './stubs/session.mjs';

await i18next.init({ lng: 'en-US', ns: ['error'], resources: { 'en-US': { error: errorLocale } }, interpolation: { escapeValue: false } });

/** Where the browser is: LobeHub's own origin (the chat route is same-origin). */
const APP_ORIGIN = 'http://localhost:3210';

/**
 * One chat turn as LobeHub's browser sends it (`src/services/chat/index.ts` getChatCompletion:
 * default agent params, `apiMode` from the provider's "Use Responses API" switch, which is on by
 * default for OpenAI only) through `fetchSSE` to `/webapi/chat/<provider>`, served in-process by
 * the real route with the user's saved key and proxy URL for that provider.
 */
export async function chat({ provider = 'openai', apiKey, baseURL, apiMode, model, messages }) {
  session.keyVaults = { apiKey, baseURL };
  const payload = { apiMode, frequency_penalty: 0, messages, model, presence_penalty: 0, stream: true, temperature: 1, top_p: 1 };
  let finished = null;
  let error = null;
  const shown = [];
  let status = null;
  await fetchSSE(`/webapi/chat/${provider}`, {
    body: JSON.stringify(payload),
    headers: { 'Content-Type': 'application/json' },
    method: 'POST',
    // Next.js routing: the browser's request handed to the route's POST handler.
    fetcher: async (url, init) => {
      const response = await chatRoute(new Request(new URL(url, APP_ORIGIN), init), { params: Promise.resolve({ provider }) });
      status = response.status;
      return response;
    },
    // DEFAULT_COMMON_SETTINGS.transitionMode: the text is buffered and shown in slices.
    responseAnimation: 'fadeIn',
    onMessageHandle: (chunk) => {
      if (chunk.type === 'text') shown.push(chunk.text);
    },
    onErrorHandle: (e) => {
      error = e;
    },
    onFinish: async (text, context) => {
      finished = { text, usage: context.usage ?? null, type: context.type };
    },
  });
  return { status, text: finished?.text ?? shown.join(''), usage: finished?.usage ?? null, error, userSees: error ? whatTheUserSees(error) : null };
}

/**
 * Settings → AI providers → "Fetch model list" (`src/services/models.ts` getModels, on the server
 * as by default): `GET /webapi/models/<provider>`, served in-process by the real route, which runs
 * the provider runtime's `models()` with the user's saved key and proxy URL. Returns the model
 * cards LobeHub keeps (with the prices it shows), or the error it answered.
 */
export async function models({ provider, apiKey, baseURL }) {
  session.keyVaults = { apiKey, baseURL };
  const response = await modelsRoute(new Request(new URL(`/webapi/models/${provider}`, APP_ORIGIN), { headers: { 'Content-Type': 'application/json' } }), {
    params: Promise.resolve({ provider }),
  });
  const body = await response.json();
  return { status: response.status, cards: response.ok ? body : null, error: response.ok ? null : body };
}

/**
 * The error bubble, as `src/features/Conversation/Error/index.tsx` composes it (React not run):
 * the title is `t('response.<type>', {provider})` (useErrorContent) and, for every type without a
 * dedicated form, an expanded JSON view of `error.body` (ErrorMessageExtra → ErrorContent extra).
 */
function whatTheUserSees(error) {
  const providerName = DEFAULT_MODEL_PROVIDER_LIST.find((p) => p.id === error?.body?.provider)?.name ?? error?.body?.provider ?? '';
  const title = i18next.t(`response.${error.type}`, { ns: 'error', provider: providerName });
  const special = String(error.type).includes('Invalid') || ['OllamaServiceUnavailable', 'OllamaBizError', 'NoOpenAIAPIKey'].includes(error.type);
  return { type: error.type, title, details: !special && error.body ? JSON.stringify(error.body, null, 2) : null };
}

/**
 * An MCP server added as LobeHub's "Add Custom Skill" → Streamable HTTP with "API Key" auth:
 * `getStreamableMcpServerManifest` (what installing it does), then the tool call the tRPC router
 * `src/server/routers/tools/mcp.ts` makes, with its `processContentBlocks` bound to a file service.
 */
export async function mcp({ url, token, identifier = 'lobe-quota', toolName = 'check_quota', args = {} }) {
  const auth = { type: 'bearer', token };
  const manifest = await mcpService.getStreamableMcpServerManifest(identifier, url, undefined, auth);
  const uploads = [];
  // Stands in for `src/server/services/file` FileService (S3 or local storage plus a database row):
  // it decodes the base64 the same way uploadBase64 does, keeps the bytes, and answers with the
  // `${APP_URL}/f/:id` proxy URL the real one returns (APP_URL's default when NODE_ENV is
  // production, as in this bundle).
  const fileService = {
    uploadBase64: async (base64Data, pathname) => {
      const base64 = base64Data.startsWith('data:') ? base64Data.slice(base64Data.indexOf(',') + 1) : base64Data;
      const fileId = `file_${uploads.length + 1}`;
      uploads.push({ pathname, bytes: Buffer.from(base64, 'base64') });
      return { fileId, key: pathname, url: `${APP_ORIGIN}/f/${fileId}` };
    },
  };
  const result = await mcpService.callTool({
    argsStr: JSON.stringify(args),
    clientParams: { auth, name: identifier, type: 'http', url },
    processContentBlocks: (blocks) => processContentBlocks(blocks, fileService),
    toolName,
  });
  return { manifest, result, uploads };
}
