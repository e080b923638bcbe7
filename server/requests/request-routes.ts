import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { AppEnv, Services } from '../http/app-env.js';
import { ApiError, errorJson } from '../http/errors.js';
import { jsonBody, queryOf } from '../http/validate.js';
import { formatScope } from '../quota/scope.js';
import { microsToUsd } from '../quota/status.js';
import { grantView } from '../admin/grant-routes.js';
import { confirmPage, outcomePage, type Page } from './confirm-page.js';
import { publicBase } from './public-base.js';
import { linkSecret, readLinkParams, signatureMatches, type LinkAction } from './request-links.js';
import { askForMore, decide, requestView, type RequestServices } from './request-service.js';

const BODY_LIMIT = 16 * 1024;

/** `POST /quota/requests` (and the MCP tool's arguments). */
export const postRequestBody = z.strictObject({
  amount: z.number().positive().max(1e15).optional().describe('In the budget’s unit: tokens, or US dollars for a dollar budget. Default: enough for the rest of the window at the current burn rate (at least 10 % of the limit).'),
  reason: z.string().max(500).optional(),
  scope: z.string().max(300).optional().describe('The budget’s scope (`user:alice`, `project:research`, `key:…`, `global`); default: the binding budget of your /quota'),
});

/** `POST /admin/requests/:id/approve`: optionally another amount than asked, in the budget's unit. */
export const approveRequestBody = z.strictObject({ amount: z.number().positive().max(1e15).optional() });

const requestsQuery = z.strictObject({ state: z.enum(['open', 'approved', 'denied']).optional(), userId: z.string().max(200).optional() });

const decisionView = (d: Awaited<ReturnType<typeof decide>>) => ({ ...requestView(d.request), grant: d.grant ? grantView(d.grant) : null });

/**
 * Increase requests: a user asks (`POST /quota/requests`), an admin lists and decides
 * (`/admin/requests`), and anyone holding a signed link decides through a confirm page
 * (`/requests/:id/approve|deny`). Mounted after the /quota and /admin authentication.
 */
export function requestRoutes(services: Services) {
  const svc: RequestServices = { ...services, linkSecret: linkSecret(services.store) };
  const { store } = services;
  const limit = bodyLimit({ maxSize: BODY_LIMIT, onError: (c) => errorJson(c, new ApiError('payload_too_large', `body: larger than ${BODY_LIMIT} bytes`)) });

  return new Hono<AppEnv>()
    .post('/quota/requests', limit, async (c) => {
      const caller = c.get('caller');
      if (caller.kind !== 'user') throw new ApiError('forbidden', 'the admin token has no quota to ask more of: use a user key (or POST /admin/grants)');
      const body = await jsonBody(c, postRequestBody);
      const asked = await askForMore(svc, caller.identity, body, publicBase(c, services.config));
      return c.json({ ...requestView(asked.request), unit: asked.unit, grant: asked.grant ? grantView(asked.grant) : null }, 201);
    })
    .get('/admin/requests', async (c) => {
      const q = queryOf(c, requestsQuery);
      const requests = await store.listQuotaRequests({ ...(q.state ? { state: q.state } : {}), ...(q.userId ? { userId: q.userId } : {}) });
      return c.json({ requests: requests.map(requestView) });
    })
    .post('/admin/requests/:id/approve', async (c) => {
      const body = await jsonBody(c, approveRequestBody);
      return c.json(decisionView(await decide(svc, c.req.param('id'), { action: 'approve', decidedBy: 'admin', amount: body.amount })));
    })
    .post('/admin/requests/:id/deny', async (c) => c.json(decisionView(await decide(svc, c.req.param('id'), { action: 'deny', decidedBy: 'admin' }))))
    .get('/requests/:id/:action', async (c) => render(c, await followLink(c, svc, 'show')))
    .post('/requests/:id/:action', limit, async (c) => render(c, await followLink(c, svc, 'decide')));
}

const render = (c: Context, p: Page) => {
  for (const [name, value] of Object.entries(p.headers)) c.header(name, value);
  return c.html(p.html, p.status);
};

/**
 * A signed link, checked before anything is read about the request (a bad signature says nothing
 * about whether the request exists): signature, expiry, still open. `show` (GET) only confirms;
 * `decide` (the confirm page's POST) decides, as `link`.
 */
async function followLink(c: Context, svc: RequestServices, step: 'show' | 'decide'): Promise<Page> {
  const id = c.req.param('id') ?? '';
  const action = c.req.param('action');
  if (action !== 'approve' && action !== 'deny') return outcomePage(404, 'No such link', 'A request link ends in /approve or /deny.');
  const fields = step === 'show' ? c.req.query() : await formFields(c);
  const params = fields && readLinkParams(fields);
  if (!params) return outcomePage(400, 'Incomplete link', 'This link is missing some of its parameters: open it exactly as it was sent.');
  if (!signatureMatches(await svc.linkSecret(), id, action as LinkAction, params)) {
    return outcomePage(403, 'Invalid link', 'This link is not valid: it was changed, or it belongs to another request. Nothing was changed.');
  }
  const now = svc.clock.now();
  if (now >= params.expires) return outcomePage(410, 'Expired link', `This link expired at ${new Date(params.expires).toISOString()}. Nothing was changed; an admin can still decide the request.`);
  const request = await svc.store.getQuotaRequest(id);
  if (!request) return outcomePage(404, 'No such request', 'This request no longer exists. Nothing was changed.');
  if (request.state !== 'open') {
    const when = request.decidedAt === null ? '' : ` at ${new Date(request.decidedAt).toISOString()}`;
    return outcomePage(409, 'Already decided', `This request was already ${request.state} (by ${request.decidedBy ?? '?'}${when}). Nothing was changed.`);
  }
  const amount = params.tokens > 0 ? `${params.tokens.toLocaleString('en-US')} tokens` : `$${microsToUsd(params.micros)}`;
  if (step === 'show') {
    const user = await svc.store.getUser(request.userId);
    return confirmPage({
      action,
      requestId: request.id,
      who: `${user?.name ?? request.userId} (user:${request.userId})`,
      budget: `${formatScope(request.scope)}, ${request.budgetKey.slice(request.budgetKey.indexOf('|') + 1)}`,
      amount,
      reason: request.reason,
      expires: new Date(params.expires).toISOString(),
      fields: { tokens: String(params.tokens), micros: String(params.micros), expires: String(params.expires), sig: params.sig },
    });
  }
  try {
    await decide(svc, id, { action, decidedBy: 'link', amount: { tokens: params.tokens, micros: params.micros } });
  } catch (error) {
    if (error instanceof ApiError && (error.code === 'conflict' || error.code === 'not_found')) return outcomePage(409, 'Not decided', `${error.message}. Nothing was changed.`);
    throw error;
  }
  return action === 'approve'
    ? outcomePage(200, 'Approved', `Granted ${amount} to ${request.userId} for the rest of the budget's window.`)
    : outcomePage(200, 'Denied', `The request of ${request.userId} was denied.`);
}

async function formFields(c: Context): Promise<Record<string, string> | null> {
  const type = c.req.header('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return null;
  return Object.fromEntries(new URLSearchParams(await c.req.text()));
}
