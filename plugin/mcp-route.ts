import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { z } from 'zod';
import { ADMIN_TOKEN_PREFIX, bearerToken, hashSecret, USER_KEY_PREFIX } from '../server/auth/secrets.js';
import type { AppEnv, Services } from '../server/http/app-env.js';
import { ownQuotaStatus } from '../server/quota/own-status.js';
import { budgetStatusLooseSchema, quotaStatusLooseSchema } from '../server/quota/quota-status-schema.js';
import type { QuotaStatus } from '../server/quota/status-report.js';
import type { KeyIdentity } from '../server/store/types.js';
import { ApiError } from '../server/http/errors.js';
import { publicBase } from '../server/requests/public-base.js';
import { linkSecret } from '../server/requests/request-links.js';
import { askForMore, type RequestServices } from '../server/requests/request-service.js';
import { decisionLines, requestAnswer } from './request-text.js';
import { localeFromAcceptLanguage } from './accept-language.js';
import { renderQuotaCard } from './card-image/render-card.js';
import { quotaMarkdown, type Locale } from './quota-markdown.js';

const SERVER_INFO = { name: 'lobe-quota', version: '0.1.0' };

/** `check_quota` takes a few bytes of arguments; anything near this is not an MCP client. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * MCP over streamable HTTP at `POST /mcp`, stateless: every request gets a fresh server and
 * transport and no session id is issued, so a restart of lobe-quota never leaves LobeChat holding a
 * session the server forgot (lobehub#8403: "No valid session ID provided" until it is reconnected).
 * The caller is whoever the bearer `lq-` key belongs to, looked up again on every request (a
 * revoked key stops working at once), and each request's server is bound to that one caller.
 */
export function mcpRoutes(services: Services) {
  const requests: RequestServices = { ...services, linkSecret: linkSecret(services.store) };
  return (
    new Hono<AppEnv>()
      // LobeChat calls MCP servers from its own server, but browser-based MCP clients
      // (e.g. the MCP Inspector) need CORS. Bearer auth, no cookies: any origin is safe.
      .use(
        '/mcp',
        cors({
          origin: '*',
          allowMethods: ['POST', 'GET', 'DELETE', 'OPTIONS'],
          allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'Mcp-Protocol-Version', 'Mcp-Session-Id', 'Last-Event-ID'],
          exposeHeaders: ['Mcp-Protocol-Version', 'Mcp-Session-Id', 'WWW-Authenticate'],
        }),
      )
      .post('/mcp', async (c) => {
        const token = bearerToken(c.req.header('authorization'));
        const identity = await keyHolder(services, token);
        if (identity === null) return unauthorized(token);

        const server = quotaMcpServer(requests, identity, localeFromAcceptLanguage(c.req.header('accept-language')), publicBase(c, services.config));
        const transport = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          // One short answer per request: plain JSON instead of an SSE stream.
          enableJsonResponse: true,
          maxRequestBodySize: MAX_BODY_BYTES,
        });
        try {
          await server.connect(transport);
          return await transport.handleRequest(c.req.raw);
        } catch (error) {
          console.error('[lobe-quota] POST /mcp failed:', error);
          return jsonRpcError(500, -32603, 'Internal error; the server log has the details.');
        } finally {
          // In JSON mode the answer is complete once handleRequest resolves: nothing outlives it.
          await server.close();
        }
      })
      // A stateless server has no SSE stream to open and no session to delete (the SDK's own
      // stateless examples answer the same); the SDK client treats 405 on GET as "no stream".
      .on(['GET', 'DELETE'], '/mcp', () =>
        jsonRpcError(405, -32000, 'Method not allowed: this MCP server is stateless; send JSON-RPC with POST.', { Allow: 'POST, OPTIONS' }),
      )
  );
}

/** The identity behind an active `lq-` key, or null (missing, unknown, revoked, or not a user key). */
async function keyHolder({ store }: Pick<Services, 'store'>, token: string | null): Promise<KeyIdentity | null> {
  if (token === null || !token.startsWith(USER_KEY_PREFIX)) return null;
  return store.findKeyByHash(hashSecret(token));
}

/**
 * HTTP 401 with a JSON-RPC error body: the SDK client (LobeChat's) fails the call with this
 * message instead of retrying, and `WWW-Authenticate` names the scheme (RFC 6750: no error code
 * when no credentials were sent at all).
 */
function unauthorized(token: string | null): Response {
  const [message, challenge] =
    token === null
      ? ['Missing "Authorization: Bearer lq-…" header: set your lobe-quota key as the bearer token.', 'Bearer realm="lobe-quota"']
      : [
          token.startsWith(ADMIN_TOKEN_PREFIX)
            ? 'The admin token has no quota of its own: use a personal lq- key.'
            : 'Unknown or revoked key: ask your admin for a valid lq- key.',
          'Bearer realm="lobe-quota", error="invalid_token"',
        ];
  return jsonRpcError(401, -32001, message, { 'WWW-Authenticate': challenge });
}

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/**
 * The `/quota` JSON as the tool's output schema: the loose variant, so a field added to `/quota`
 * later does not make clients' validation of every call fail.
 */
export const quotaOutputSchema = quotaStatusLooseSchema;
export const budgetOutputSchema = budgetStatusLooseSchema;

export const CHECK_QUOTA_DESCRIPTION =
  "Shows the user's own LLM quota in lobe-quota: how much of their token or dollar budget is used, " +
  'what remains, whether it is running low, and when it resets, as a progress bar plus every budget that applies. ' +
  'Call it whenever the user asks about their quota, usage, spending, cost, credits, remaining budget, balance or limits, ' +
  'or types /check_quota, in English or Chinese (额度, 配额, 用量, 用了多少, 花了多少钱, 还剩多少, 余额, 限额, 预算, 什么时候重置). ' +
  'No arguments are needed: the key this server is configured with identifies the user. ' +
  'Pass locale "zh" when the user writes Chinese. The answer is Markdown plus the same card as a PNG image; ' +
  'show the returned Markdown as it is. When the status is critical or exceeded, offer to ask an admin for more with request_quota_increase.';

export const REQUEST_QUOTA_INCREASE_DESCRIPTION =
  'Asks the admins for more quota on one of the user’s budgets (an increase request; they approve or deny it, ' +
  'often in one click, and small requests may be approved at once). Offer it when check_quota shows the status critical or exceeded, ' +
  'or when the user asks for more quota (申请额度, 提高额度, 加额度); call it only once the user agrees. ' +
  '`amount` is in the budget’s unit (tokens, or US dollars for a dollar budget); leave it out to ask for enough for the rest of the window at the current rate. ' +
  'Pass the user’s `reason` in their words. The next check_quota tells the user the decision.';

/**
 * One server per request, bound to the caller: the tool cannot reach anyone else's status.
 * `defaultLocale` (from the request's Accept-Language) applies when the model passes no locale.
 */
function quotaMcpServer(services: RequestServices, identity: KeyIdentity, defaultLocale: Locale, linkBase: string): McpServer {
  const server = new McpServer(SERVER_INFO, {
    instructions: 'Call check_quota whenever the user asks about their LLM quota, usage, spending or limits (也包括中文提问：额度、用量、余额).',
  });
  server.registerTool(
    'check_quota',
    {
      title: 'Check quota',
      description: CHECK_QUOTA_DESCRIPTION,
      inputSchema: {
        locale: z.enum(['en', 'zh']).optional().describe('Language of the answer: "zh" for Chinese, "en" (default) otherwise'),
      },
      outputSchema: quotaOutputSchema,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ locale = defaultLocale }) => {
      const status = await ownQuotaStatus(services, identity);
      const now = services.clock.now();
      // Each decision is told once: only those this call marked as seen.
      const unseen = await services.store.unseenDecisions(identity.user.id);
      const marked = new Set(await services.store.markRequestSeen(unseen.map((r) => r.id), now));
      const news = decisionLines(unseen.filter((r) => marked.has(r.id)));
      const offer =
        status.status === 'critical' || status.status === 'exceeded'
          ? ['The quota is nearly or fully used: offer the user to ask an admin for more with the request_quota_increase tool.']
          : [];
      const text = { type: 'text' as const, text: [quotaMarkdown(status, { locale, now }), ...news, ...offer].join('\n\n') };
      const image = await cardImageBlock(status, { locale, now });
      return {
        // LobeHub 2.x draws the image; the model, and clients that show no images, read the text.
        content: image === null ? [text] : [text, image],
        // Exactly the `/quota` document (the SDK validates it against the output schema first).
        structuredContent: { ...status },
      };
    },
  );
  server.registerTool(
    'request_quota_increase',
    {
      title: 'Ask for more quota',
      description: REQUEST_QUOTA_INCREASE_DESCRIPTION,
      inputSchema: {
        amount: z.number().positive().max(1e15).optional().describe('In the budget’s unit: tokens, or US dollars for a dollar budget (default: enough for the rest of the window)'),
        reason: z.string().max(500).optional().describe('Why, in the user’s words'),
        scope: z.string().max(300).optional().describe('The budget’s scope, e.g. "user:alice" (default: the one closest to its limit)'),
      },
      annotations: { readOnlyHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      try {
        const asked = await askForMore(services, identity, args, linkBase);
        return { content: [{ type: 'text' as const, text: requestAnswer(asked) }] };
      } catch (error) {
        if (error instanceof ApiError) return { isError: true, content: [{ type: 'text' as const, text: `The request was not made: ${error.message}` }] };
        throw error;
      }
    },
  );
  return server;
}

/**
 * The card as an MCP image block, or null if it could not be drawn: the figures are all in the
 * text too, so a failed render costs the picture, not the answer.
 */
async function cardImageBlock(
  status: QuotaStatus,
  options: { locale: Locale; now: number },
): Promise<{ type: 'image'; data: string; mimeType: 'image/png' } | null> {
  try {
    const { png } = await renderQuotaCard(status, options);
    return { type: 'image', data: png.toString('base64'), mimeType: 'image/png' };
  } catch (error) {
    console.error('[lobe-quota] check_quota: the card image could not be rendered:', error);
    return null;
  }
}
