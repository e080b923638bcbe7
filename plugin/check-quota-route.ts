import { createErrorResponse, getPluginSettingsFromRequest, PluginErrorType, type IPluginErrorType } from '@lobehub/chat-plugin-sdk';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { USER_KEY_PREFIX } from '../server/auth/secrets.js';
import type { AppEnv, Services } from '../server/http/app-env.js';
import { hashSecret } from '../server/auth/secrets.js';
import { ApiError } from '../server/http/errors.js';
import { ownQuotaStatus, quotaForKey } from '../server/quota/own-status.js';
import { postRequestBody } from '../server/requests/request-routes.js';
import { askForMore, requestView, type RequestServices } from '../server/requests/request-service.js';
import { linkSecret } from '../server/requests/request-links.js';
import { publicBase } from '../server/requests/public-base.js';
import { requestAnswer } from './request-text.js';

export const CHECK_QUOTA_PATH = '/plugin/check-quota';
export const REQUEST_INCREASE_PATH = '/plugin/request-increase';

/** checkQuota takes no arguments; anything near this size is not LobeChat calling. */
const MAX_ARGUMENTS_BYTES = 64 * 1024;

/** The SDK's `{errorType, body: {message}}` response, labelled as the JSON it is (the SDK sets no type). */
function pluginError(errorType: IPluginErrorType, message: string): Response {
  const response = createErrorResponse(errorType, { message });
  response.headers.set('Content-Type', 'application/json');
  return response;
}
const settingsError = (message: string) => pluginError(PluginErrorType.PluginSettingsInvalid, message);
const argumentsError = (message: string) => pluginError(PluginErrorType.PluginApiParamsError, message);

const NO_KEY =
  "Add your lobe-quota key (lq-…) in this plugin's settings; your lobe-quota admin can create one. " +
  '请在插件设置中填写你的 lobe-quota 密钥（lq-…），可向管理员索取。';
const NOT_A_USER_KEY =
  "The key in this plugin's settings is not a lobe-quota user key: it should start with lq-. " +
  '插件设置中的密钥不是 lobe-quota 用户密钥，应以 lq- 开头。';
const UNKNOWN_KEY =
  "This lobe-quota key is not valid or was revoked. Ask your lobe-quota admin for a new key and put it in this plugin's settings. " +
  '这个 lobe-quota 密钥无效或已被吊销，请向管理员索取新密钥并更新插件设置。';

/** The key from `X-Lobe-Plugin-Settings`, or why there is none. */
function keyFromSettings(request: Request): { key: string } | { problem: string } {
  // The SDK returns the parsed JSON, or the raw text when the header is not JSON.
  const settings: unknown = getPluginSettingsFromRequest(request);
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) return { problem: NO_KEY };
  const apiKey = (settings as { apiKey?: unknown }).apiKey;
  // A pasted key often carries a stray space or newline; the key itself never contains one.
  const key = typeof apiKey === 'string' ? apiKey.trim() : '';
  if (key === '') return { problem: NO_KEY };
  // Most likely an OpenAI key or the admin token pasted by mistake; the admin token is refused here
  // on purpose, since this route answers for one person only.
  return key.startsWith(USER_KEY_PREFIX) ? { key } : { problem: NOT_A_USER_KEY };
}

/** An empty body (the gateway forwards `arguments` as-is, and may have none) or any JSON object. */
function argumentsProblem(text: string): string | null {
  if (text.trim() === '') return null;
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return null;
  } catch {
    // falls through to the same answer as valid JSON that is not an object
  }
  return 'checkQuota takes a JSON object of arguments (it has none: send {} or nothing).';
}

/** Any other method than POST on a plugin api: the SDK's MethodNotAllowed, with Allow. */
function onlyPost(c: Context<AppEnv>): Response {
  const response = pluginError(PluginErrorType.MethodNotAllowed, `${c.req.method} ${c.req.path}: only POST`);
  response.headers.set('Allow', 'POST');
  return response;
}

/**
 * `POST /plugin/check-quota`, called by LobeChat's plugin gateway from its server (so no CORS):
 * the body is the tool-call arguments as JSON text with `Content-Type: text/plain` (hence parsed
 * here by hand, not with a JSON validator that would see `{}`), and the user's plugin settings are
 * JSON in `X-Lobe-Plugin-Settings`. No user id is forwarded: the `lq-` key in the settings is the
 * identity, and the answer is that key's own `/quota` JSON, which LobeChat hands to the model and
 * to the card. Errors use the SDK's `{errorType, body}` shape; settings are checked before the
 * arguments, in the gateway's own order.
 */
export function checkQuotaRoutes(services: Services) {
  const requests: RequestServices = { ...services, linkSecret: linkSecret(services.store) };
  return new Hono<AppEnv>()
    .post(
      CHECK_QUOTA_PATH,
      bodyLimit({
        maxSize: MAX_ARGUMENTS_BYTES,
        onError: () => argumentsError(`checkQuota arguments: larger than ${MAX_ARGUMENTS_BYTES} bytes`),
      }),
      async (c) => {
        const found = keyFromSettings(c.req.raw);
        if ('problem' in found) return settingsError(found.problem);
        const problem = argumentsProblem(await c.req.text());
        if (problem !== null) return argumentsError(problem);
        const status = await quotaForKey(services, found.key);
        // Unknown and revoked keys get the same answer, and no data of anyone.
        if (status === null) return settingsError(UNKNOWN_KEY);
        return c.json(status);
      },
    )
    .post(
      REQUEST_INCREASE_PATH,
      bodyLimit({
        maxSize: MAX_ARGUMENTS_BYTES,
        onError: () => argumentsError(`requestQuotaIncrease arguments: larger than ${MAX_ARGUMENTS_BYTES} bytes`),
      }),
      async (c) => {
        const found = keyFromSettings(c.req.raw);
        if ('problem' in found) return settingsError(found.problem);
        const identity = await services.store.findKeyByHash(hashSecret(found.key));
        if (identity === null) return settingsError(UNKNOWN_KEY);
        const text = await c.req.text();
        let parsed: unknown = {};
        try {
          parsed = text.trim() === '' ? {} : JSON.parse(text);
        } catch {
          return argumentsError('requestQuotaIncrease takes a JSON object of arguments: {"amount"?, "reason"?, "scope"?}.');
        }
        const body = postRequestBody.safeParse(parsed);
        if (!body.success) return argumentsError(`requestQuotaIncrease arguments: ${body.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
        try {
          const asked = await askForMore(requests, identity, body.data, publicBase(c, services.config));
          // The quota as it now stands (the card draws it), with the request and a sentence for the model.
          const status = await ownQuotaStatus(services, identity);
          return c.json({ ...status, request: requestView(asked.request), message: requestAnswer(asked) });
        } catch (error) {
          if (error instanceof ApiError) return argumentsError(`The request was not made: ${error.message}`);
          throw error;
        }
      },
    )
    .all(CHECK_QUOTA_PATH, onlyPost)
    .all(REQUEST_INCREASE_PATH, onlyPost);
}
