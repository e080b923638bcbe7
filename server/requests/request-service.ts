import type { Services } from '../http/app-env.js';
import { ApiError } from '../http/errors.js';
import { formatScope, scopeSchema, scopesOf } from '../quota/scope.js';
import { bindingIndex, microsToUsd, usdToMicros } from '../quota/status.js';
import { windowSpanMs } from '../quota/window.js';
import type { BudgetState, Decided, Grant, KeyIdentity, QuotaRequest, RequestDecision } from '../store/types.js';
import { requestAlert } from './request-alerts.js';
import { currentWindow, defaultAmount, policyApproves, unitOf } from './request-amount.js';
import { linkUrl, type LinkAction } from './request-links.js';

const HOUR = 3_600_000;
/** The most US dollars a request or an approval may name (a budget's own limit is bounded alike). */
const MAX_USD = 1e9;

/** What asking and deciding need: the services, and the link secret (see request-links.ts). */
export interface RequestServices extends Pick<Services, 'store' | 'config' | 'clock'> {
  linkSecret: () => Promise<string>;
}

/** What a user may send: `amount` in the budget's unit (tokens, or US dollars for a dollar budget). */
export interface AskBody {
  amount?: number | undefined;
  reason?: string | undefined;
  scope?: string | undefined;
}

/** A request as the API shows it. */
export const requestView = (r: QuotaRequest) => ({
  id: r.id,
  userId: r.userId,
  keyId: r.keyId,
  scope: formatScope(r.scope),
  budgetKey: r.budgetKey,
  amountTokens: r.amountTokens,
  amountUsd: microsToUsd(r.amountMicros),
  reason: r.reason,
  state: r.state,
  createdAt: new Date(r.createdAt).toISOString(),
  decidedAt: r.decidedAt === null ? null : new Date(r.decidedAt).toISOString(),
  decidedBy: r.decidedBy,
  grantedTokens: r.grantedTokens,
  grantedUsd: r.grantedMicros === null ? null : microsToUsd(r.grantedMicros),
  grantId: r.grantId,
});

/** The budget a request is for: the one named by scope (the binding one of that scope's), else the caller's binding budget. */
function budgetAskedOn(states: readonly BudgetState[], ownScopes: readonly string[], scopeText: string | undefined, levels: Services['config']['statusLevels']): BudgetState {
  let candidates = states;
  if (scopeText !== undefined) {
    const parsed = scopeSchema.safeParse(scopeText);
    if (!parsed.success) throw new ApiError('invalid_request', `scope: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const wanted = formatScope(parsed.data);
    // The same answer whether or not another subject exists: no probing for names.
    if (!ownScopes.includes(wanted)) throw new ApiError('forbidden', 'scope: you can only ask on a budget that binds your own requests (your key, you, your project, or global)');
    candidates = states.filter((s) => formatScope(s.budget.scope) === wanted);
    if (candidates.length === 0) throw new ApiError('not_found', `scope: no budget on ${wanted} binds your requests`);
  }
  const figures = candidates.map((s) => ({
    usedTokens: s.usage.usedTokens,
    reservedTokens: s.usage.reservedTokens,
    usedMicros: s.usage.usedMicros,
    reservedMicros: s.usage.reservedMicros,
    limitTokens: s.budget.limitTokens,
    limitMicros: s.budget.limitMicros,
    windowSpanMs: windowSpanMs(s.budget.window),
  }));
  const state = candidates[bindingIndex(figures, levels)];
  if (!state) throw new ApiError('not_found', 'no budget binds your requests: there is nothing to ask more of');
  return state;
}

/** The amount asked, as tokens and micro-dollars (one of them 0), from the body's number in the budget's unit. */
function amountsOf(state: BudgetState, amount: number | undefined, now: number): { tokens: number; micros: number } {
  const unit = unitOf(state.budget);
  if (amount === undefined) {
    const value = defaultAmount(state, now);
    return unit === 'tokens' ? { tokens: value, micros: 0 } : { tokens: 0, micros: value };
  }
  if (unit === 'tokens') {
    if (!Number.isInteger(amount)) throw new ApiError('invalid_request', 'amount: this budget counts tokens: a whole number of tokens');
    return { tokens: amount, micros: 0 };
  }
  // A dollar amount becomes micro-dollars: bounded so they stay exact integers in both stores.
  if (amount > MAX_USD) throw new ApiError('invalid_request', `amount: this budget counts US dollars: at most ${MAX_USD.toLocaleString('en-US')}`);
  const micros = usdToMicros(amount);
  if (micros < 1) throw new ApiError('invalid_request', 'amount: this budget counts US dollars: at least 0.000001');
  return { tokens: 0, micros };
}

export interface Asked {
  request: QuotaRequest;
  /** Set when the auto-approve policy granted it at once. */
  grant: Grant | null;
  unit: 'tokens' | 'usd';
}

/**
 * A user asks for more on a budget that binds their own requests. The request and its alert (with
 * signed approve and deny links under `linkBase`) are recorded together; a request the policy
 * approves is decided at once instead (decidedBy `policy`) and its decision is what is announced.
 */
export async function askForMore(svc: RequestServices, identity: KeyIdentity, body: AskBody, linkBase: string): Promise<Asked> {
  const { store, config, clock } = svc;
  const now = clock.now();
  const scopes = scopesOf({ userId: identity.user.id, projectId: identity.user.projectId, keyId: identity.key.id });
  const states = await store.budgetStates(scopes, now);
  const state = budgetAskedOn(states, scopes.map(formatScope), body.scope, config.statusLevels);
  if (currentWindow(state.budget, now) === null) {
    throw new ApiError('invalid_request', 'scope: a total budget never resets, so there is no window to grant more for; ask an admin for a grant until a date');
  }
  const unit = unitOf(state.budget);
  const { tokens, micros } = amountsOf(state, body.amount, now);
  const input = { userId: identity.user.id, keyId: identity.key.id, scope: state.budget.scope, budgetKey: state.budget.key, amountTokens: tokens, amountMicros: micros, reason: body.reason ?? null };
  const alertContext = { state, subjectName: identity.user.name, levels: config.statusLevels, now };

  // The policy gives a user more of their own budget only (their user's or their key's): on a shared
  // budget (a project's, the global one) each member's share would add up past what it allows.
  const own = state.budget.scope.kind === 'user' || state.budget.scope.kind === 'key';
  const policyAllows = async () =>
    own && policyApproves(config.requests.autoApprove, state, unit === 'tokens' ? tokens : micros, await store.listQuotaRequests({ userId: identity.user.id, state: 'approved' }), now);
  const byPolicy = await policyAllows();
  const secret = byPolicy ? '' : await svc.linkSecret();
  const expires = now + config.requests.linkTtlHours * HOUR;
  const link = (id: string, action: LinkAction) => linkUrl(linkBase, secret, id, action, { tokens, micros, expires });
  const created = await store.createQuotaRequest(input, now, (request) =>
    byPolicy ? null : requestAlert('request', request, { ...alertContext, links: { approve: link(request.id, 'approve'), deny: link(request.id, 'deny') } }),
  );
  if (!created.ok) {
    if (created.reason === 'exists') throw new ApiError('conflict', `you already have an open request on ${formatScope(state.budget.scope)} (${state.budget.key}); wait for its decision`);
    throw new ApiError('not_found', 'your user no longer exists');
  }
  if (!byPolicy) return { request: created.value, grant: null, unit };
  // Counted again now that this request is open: no other request of this user on this budget can be
  // opened meanwhile (one open request per budget), so two at once cannot both pass the policy. One
  // that lost the race stays open for an admin (listed in the dashboard, the CLI and /admin/requests).
  if (!(await policyAllows())) return { request: created.value, grant: null, unit };
  const decided = await decide(svc, created.value.id, { action: 'approve', decidedBy: 'policy' });
  return { request: decided.request, grant: decided.grant, unit };
}

/**
 * Decides an open request: an approval grants `amount` (in the budget's unit; default: what was
 * asked) until the end of the budget's current window. Announced as `request_decided`.
 */
export async function decide(
  svc: RequestServices,
  id: string,
  how: { action: LinkAction; decidedBy: RequestDecision['decidedBy']; amount?: { tokens: number; micros: number } | number | undefined },
): Promise<{ request: QuotaRequest; grant: Grant | null }> {
  const { store, config, clock } = svc;
  const now = clock.now();
  const request = await store.getQuotaRequest(id);
  if (!request) throw new ApiError('not_found', `no request ${JSON.stringify(id)}`);
  if (request.state !== 'open') throw notOpen(request);
  const state = (await store.budgetStates([request.scope], now)).find((s) => s.budget.key === request.budgetKey);
  let decision: RequestDecision = { state: 'denied', decidedBy: how.decidedBy };
  if (how.action === 'approve') {
    if (!state) throw new ApiError('conflict', 'the budget of this request no longer exists: deny it instead');
    const window = currentWindow(state.budget, now);
    if (window === null) throw new ApiError('conflict', 'the budget of this request has no window any more (a total budget): deny it, or grant until a date');
    // Asked for in an earlier window: granting it now would give that window's need to this one.
    if (window.start > request.createdAt) throw new ApiError('conflict', 'this request was made in an earlier window of its budget, which has reset since: deny it (the user can ask again)');
    const amount = typeof how.amount === 'number' ? amountsOf(state, how.amount, now) : (how.amount ?? { tokens: request.amountTokens, micros: request.amountMicros });
    if (amount.tokens <= 0 && amount.micros <= 0) throw new ApiError('invalid_request', 'amount: must be more than 0');
    decision = { state: 'approved', decidedBy: how.decidedBy, grant: { tokens: amount.tokens, micros: amount.micros, startsAt: now, endsAt: window.end } };
  }
  const user = await store.getUser(request.userId);
  const result: Decided = await store.decideQuotaRequest(id, decision, now, (after) =>
    state ? requestAlert('request_decided', after, { state, subjectName: user?.name ?? request.userId, levels: config.statusLevels, now }) : null,
  );
  if (!result.ok) throw result.reason === 'not-found' ? new ApiError('not_found', `no request ${JSON.stringify(id)}`) : notOpen(result.request);
  return { request: result.request, grant: result.grant };
}

const notOpen = (r: QuotaRequest) =>
  new ApiError('conflict', `request ${r.id} was already ${r.state} (by ${r.decidedBy ?? '?'} at ${r.decidedAt === null ? '?' : new Date(r.decidedAt).toISOString()})`);
