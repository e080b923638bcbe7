// LobeChat 1.x (@lobehub/chat) pieces that talk to lobe-quota, bundled from its npm tarball: the
// browser's chat client (fetchSSE and its error parser), the server's chat route with its model
// runtime, the "custom plugin by URL" manifest loader, and the plugin gateway route. Only the
// sign-in check is stubbed; see scripts/compat-lobehub/stubs.
import { LOBE_CHAT_AUTH_HEADER } from '@lobechat/const';
import { fetchSSE } from '@lobechat/fetch-sse';
import { obfuscatePayloadWithXOR } from '@lobechat/utils/client/xor-obfuscation';
import { getToolManifest } from '@lobechat/utils/toolManifest';
import { createHeadersWithPluginSettings } from '@lobehub/chat-plugin-sdk';
import i18next from 'i18next';
import { POST as chatRoute } from '@/app/(backend)/webapi/chat/[provider]/route';
import { POST as gatewayRoute } from '@/app/(backend)/webapi/plugin/gateway/route';
import { DEFAULT_MODEL_PROVIDER_LIST } from '@/config/modelProviders';
import errorLocale from 'lobehub:locales/en-US/error.json';

await i18next.init({ lng: 'en-US', ns: ['error'], resources: { 'en-US': { error: errorLocale } }, interpolation: { escapeValue: false } });

/** Where the browser is: LobeChat's own origin (its routes are same-origin). */
const APP_ORIGIN = 'http://localhost:3210';
const USER_ID = 'user_2vQ3cX9kLm8PzR4tYw6NbJ1aHdE';

/** `src/services/_auth.ts` createHeaderWithAuth: the XOR-obfuscated payload in X-lobe-chat-auth. */
const authHeaders = (payload, headers = {}) => ({
  ...headers,
  [LOBE_CHAT_AUTH_HEADER]: obfuscatePayloadWithXOR({ accessCode: undefined, userId: USER_ID, ...payload }),
});

/**
 * One chat turn as LobeChat 1.x's browser sends it (`src/services/chat/index.ts`: default agent
 * params; `apiMode` only when the provider's "Use Responses API" is switched on, off by default),
 * through `fetchSSE` to `/webapi/chat/openai`, served in-process by the real route with the key and
 * proxy URL from the user's provider settings (createPayloadWithKeyVaults).
 */
export async function chat({ apiKey, baseURL, apiMode, model, messages }) {
  const payload = { apiMode, frequency_penalty: 0, messages, model, presence_penalty: 0, stream: true, temperature: 1, top_p: 1 };
  let finished = null;
  let error = null;
  const shown = [];
  let status = null;
  await fetchSSE('/webapi/chat/openai', {
    body: JSON.stringify(payload),
    headers: authHeaders({ apiKey, baseURL, runtimeProvider: 'openai' }, { 'Content-Type': 'application/json' }),
    method: 'POST',
    fetcher: async (url, init) => {
      const response = await chatRoute(new Request(new URL(url, APP_ORIGIN), init), { params: Promise.resolve({ provider: 'openai' }) });
      status = response.status;
      return response;
    },
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
 * The error bubble, as `src/features/Conversation/Error/index.tsx` composes it (React not run):
 * the title is `t('response.<type>', {provider})` (useErrorContent), and below it
 * ErrorJsonViewer shows `JSON.stringify(error.body || error)`.
 */
function whatTheUserSees(error) {
  const providerName = DEFAULT_MODEL_PROVIDER_LIST.find((p) => p.id === error?.body?.provider)?.name ?? error?.body?.provider ?? '';
  const title = i18next.t(`response.${error.type}`, { ns: 'error', provider: providerName });
  const special = String(error.type).includes('Invalid') || ['OllamaServiceUnavailable', 'OllamaBizError', 'NoOpenAIAPIKey'].includes(error.type);
  return { type: error.type, title, details: special ? null : JSON.stringify(error.body || error, null, 2) };
}

/**
 * "Add custom plugin" → URL: the manifest is fetched by the browser (no proxy: the default) and
 * validated by `getToolManifest` (`packages/utils/src/toolManifest.ts`). The browser's fetch is
 * played by `browserFetch`, which enforces CORS the way a browser on LobeChat's origin would.
 */
export async function installPluginByUrl(manifestUrl, browserFetch) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = browserFetch;
  try {
    return await getToolManifest(manifestUrl, false);
  } finally {
    globalThis.fetch = realFetch;
  }
}

/**
 * The model calls the plugin: `chatService.runPluginApi` POSTs `{...payload, manifest}` with the
 * plugin settings header to `/webapi/plugin/gateway`, served in-process by the real gateway route.
 * Returns the tool message content, or the error LobeChat would show.
 */
export async function runPluginApi({ manifest, apiName, args, settings }) {
  const payload = { apiName, arguments: JSON.stringify(args), identifier: manifest.identifier, type: manifest.type ?? 'default' };
  const response = await gatewayRoute(
    new Request(new URL('/webapi/plugin/gateway', APP_ORIGIN), {
      body: JSON.stringify({ ...payload, manifest }),
      headers: authHeaders({}, createHeadersWithPluginSettings(settings)),
      method: 'POST',
    }),
  );
  return { status: response.status, text: await response.text() };
}
