import type { Context } from 'hono';
import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import type { Metrics } from '../metrics/metrics.js';
import { admit, costMicros, type Quote } from '../quota/admission.js';
import { coversModel, routingRules } from '../quota/budgets.js';
import { countedOnce } from '../quota/rate-limits.js';
import { formatScope, scopesOf, type RequestSubject } from '../quota/scope.js';
import type { BudgetState, KeyIdentity, LedgerEntry, Store } from '../store/types.js';
import { runSteps, type MaybePromise, type Steps } from '../util/maybe-sync.js';
import { routeRequest, type RoutePlan, type Tried } from './routing.js';
import type { PromptCacheWrite } from './dialects/dialect.js';
import { payerOf, sessionAndTags } from './identity.js';
import { Meter, type Admitted } from './meter.js';
import { OpenAIError } from './openai-error.js';
import { isFree, type ModelPrice, type PriceBook } from './pricing.js';
import { quotaHeaders, settledStates, type Charge } from './quota-headers.js';
import { newRequestId } from './request-id.js';
import { rateLimitHeaders, type RateLimiter } from './rate-limiter.js';
import type { ResponseCache } from './response-cache/response-cache.js';
import { quotaRefusal, rateRefusal, type Refusal, type Requester } from './refusals.js';
import type { TokenCounter } from './token-count.js';
import { API_TITLES, type UpstreamApi } from './upstream-api.js';
import type { Upstream, Upstreams } from './upstreams.js';

/** Everything the `/v1` routes are given. */
export interface ProxyServices {
  store: Store;
  clock: Clock;
  config: Config;
  upstreams: Upstreams;
  prices: PriceBook;
  tokens: TokenCounter;
  rateLimiter: RateLimiter;
  metrics: Metrics;
  /** The private response cache, when `cache.enabled` (see response-cache/). */
  responseCache?: ResponseCache | undefined;
}

export interface AdmissionInput {
  model: string;
  /** The request's wire format: only an upstream that speaks it can serve the request. */
  api: UpstreamApi;
  /** The request body's size: a large prompt is checked against the budgets before it is counted. */
  bodyBytes: number;
  /** The body's OpenAI `user` field: a service key may name the end user with it. */
  bodyUser: unknown;
  /**
   * Prompt tokens for a model, counted only once the request is known to be allowed this far: in
   * place, or (a prompt with much new text) on the counting thread (see prompt-count.ts).
   */
  countPrompt: (model: string) => number | Promise<number>;
  /** The output the request asks for (its max tokens, or the model's cap). 0 for embeddings. */
  wantOutput: number;
  streaming: boolean;
  /** The least output the upstream accepts as a limit (see Meter). */
  minOutput?: number;
  /** The prompt is to be written to a cache, billed at the write price (see AdmissionFacts). */
  promptCacheWrite?: PromptCacheWrite | undefined;
  /** Whether a budget whose `onLimit` is `downgrade` may send this request to its cheaper model. */
  downgradable: boolean;
  /** Who pays, when the route resolved it already (the response cache looks up by payer). */
  payer?: RequestSubject | undefined;
}

export interface AdmittedRequest {
  subject: RequestSubject;
  /** The model to ask upstream: the client's, or the one a budget's rule sent the request to. */
  model: string;
  /** The client's model when a budget's rule (or `downgrade`) sent the request elsewhere, else null. */
  downgradedFrom: string | null;
  upstream: Upstream;
  meter: Meter;
  /**
   * Admits the request again on the model's next upstream, for when this one failed before its
   * answer began (this one's hold released first, so nothing is charged for it); null when no
   * upstream is left. Rate limits counted it already.
   */
  failover: (() => Promise<Admission>) | null;
  /** The output limit to forward upstream (the tightest budget's room, at most what was asked). */
  outputLimit: number;
  /**
   * x-quota-* and x-ratelimit-* headers for a stream, whose headers go out before it is settled:
   * `x-quota-remaining` counts the prompt as spent and the rest of its own hold as free again.
   * Figured from the budgets as they were at admission, when asked (a whole answer never asks).
   */
  streamHeaders(): Record<string, string>;
  /** The same headers once the request is settled with `entry` (null: released, nothing charged). */
  headersAfter(entry: LedgerEntry | null): Record<string, string>;
}

/**
 * Prompts at least this large (in body bytes) are checked against the budgets before they are
 * counted: counting is linear, but a megabyte still costs milliseconds, which a caller whose budget
 * is spent should not be able to make the server pay again and again. Smaller prompts are counted
 * first, because the check costs a store read (a round trip on PostgreSQL).
 */
export const PRECHECK_BODY_BYTES = 64 * 1024;

/** What a model served by an Ollama upstream costs when the config gives it no price. */
const LOCAL_MODEL_PRICE: ModelPrice = Object.freeze({ inputMicrosPerMillion: 0, cachedInputMicrosPerMillion: 0, outputMicrosPerMillion: 0 });

/**
 * A model's price: the config's or the shipped one. A model on an Ollama upstream runs on the
 * deployment's own hardware: $0 unless priced in the config (an Ollama cloud account is), so a
 * dollar budget never refuses it; it still spends tokens.
 */
function priceFor(services: ProxyServices, model: string, upstream: Upstream | undefined): ModelPrice | null {
  return services.prices.priceOf(model) ?? (upstream?.api === 'ollama' ? LOCAL_MODEL_PRICE : null);
}

/** Admitted, or refused by a budget or a rate limit: a value the route renders in its dialect. */
export type Admission = { ok: true; admitted: AdmittedRequest } | { ok: false; refusal: Refusal };

/**
 * The steps every metered request takes before it goes upstream, in order: who pays, which
 * upstream, the model's price, a budget check that needs no count (large prompts only), the
 * prompt's size, and the atomic admission against every rate limit and budget that applies. A quota
 * or rate refusal is returned; anything else that stops the request (a payer that cannot be named,
 * no upstream for the model, an unpriced model under a dollar budget) is thrown.
 *
 * On a store that admits in memory (Store.reserveNow) the whole of it usually runs in one
 * synchronous stretch, and the admission is a value rather than a promise (see runSteps).
 */
export function admitRequest(c: Context, services: ProxyServices, identity: KeyIdentity, input: AdmissionInput): MaybePromise<Admission> {
  return runSteps(admissionSteps(c, services, identity, input));
}

function* admissionSteps(c: Context, services: ProxyServices, identity: KeyIdentity, input: AdmissionInput): Steps<Admission> {
  const subject = input.payer ?? ((yield payerOf(c, services, identity, input.bodyUser)) as RequestSubject);
  const requester: Asker = { subject, ...sessionAndTags(c), counted: false };
  if (services.upstreams.allForModel(input.model, input.api).length === 0) throw noUpstream(services.upstreams, input.model, input.api);
  const ceiling = routedCeiling(services);
  const tried = (attempt: Attempt): Tried<Attempt> => {
    if (!attempt.ok) return { ok: false, value: attempt, blocking: attempt.blocking };
    const { admitted } = attempt;
    return { ok: true, value: attempt, budgets: attempt.before, release: () => admitted.meter.release() };
  };
  const plan = (yield routeRequest<Attempt>(input.model, {
    // Only to a model served in the request's own format: the proxy does not translate.
    upstreamsOf: (model) => services.upstreams.allForModel(model, input.api).map((u) => u.name),
    tryOn: (model, upstream, routed, failover) => {
      const attempt = admitAs(services, input, requester, model, services.upstreams.byName(upstream) as Upstream, routed ? ceiling : null, failover);
      return attempt instanceof Promise ? attempt.then(tried) : tried(attempt);
    },
    routable: input.downgradable,
    free: (model) => {
      const price = priceFor(services, model, services.upstreams.forModel(model, input.api));
      return price !== null && isFree(price);
    },
  })) as RoutePlan<Attempt>;
  return planned(services, input, requester, plan);
}

/**
 * A request a rule sent to another model counts against the budgets that route up to their hard
 * ceiling: the budget's limit × this (proxy.downgradeCeilingPercent).
 */
const routedCeiling = (services: ProxyServices): number => services.config.proxy.downgradeCeilingPercent / 100;

/** The admission a route plan ended in, with the headers of a routed request and its failover. */
function planned(services: ProxyServices, input: AdmissionInput, requester: Asker, plan: RoutePlan<Attempt>, failedOver = false): Admission {
  const attempt = plan.tried.value;
  if (!attempt.ok) {
    if (attempt.blocking !== null) services.metrics.recordOutcome(plan.model, 'refused');
    return attempt;
  }
  const { admitted } = attempt;
  const [next, ...rest] = plan.rest;
  const failover =
    next === undefined
      ? null
      : async (): Promise<Admission> => {
          const ceiling = plan.routedFrom === null ? null : routedCeiling(services);
          const again = await admitAs(services, input, requester, plan.model, services.upstreams.byName(next) as Upstream, ceiling, rest.length > 0);
          if (!again.ok) return again;
          const tried = { ok: true as const, value: again, budgets: again.before, release: () => again.admitted.meter.release() };
          return planned(services, input, requester, { ...plan, tried, rest }, true);
        };
  if (plan.routedFrom === null) {
    // The attempt's own admission, made for this request alone: it takes its failover.
    admitted.failover = failover;
    return { ok: true, admitted };
  }
  // Counted once per request, not again for each upstream it fails over to.
  if (!failedOver) services.metrics.recordRouted(plan.routedFrom, plan.model);
  const routed = { 'x-quota-routed-from': plan.routedFrom, 'x-quota-downgraded-from': plan.routedFrom };
  return {
    ok: true,
    admitted: {
      ...admitted,
      downgradedFrom: plan.routedFrom,
      failover,
      streamHeaders: () => ({ ...admitted.streamHeaders(), ...routed }),
      headersAfter: (entry) => ({ ...admitted.headersAfter(entry), ...routed }),
    },
  };
}

/**
 * A 404 for a model no upstream serves in the request's format; when one serves it in another
 * format, the message says which (the proxy does not translate between formats).
 */
export function noUpstream(upstreams: Upstreams, model: string, api: UpstreamApi): OpenAIError {
  const elsewhere = upstreams.list.find((u) => u.api !== api && u.serves(model));
  const message = elsewhere
    ? `The model \`${model}\` is served here through the ${API_TITLES[elsewhere.api]} API, not the ${API_TITLES[api]} API: send it in that format, or ask your admin to add an upstream that serves it in this one.`
    : `The model \`${model}\` does not exist or you do not have access to it.`;
  return new OpenAIError(404, 'invalid_request_error', 'model_not_found', message, 'model');
}

/**
 * Who asks, and whether their request was counted against their rate limits already: by an earlier
 * attempt on another model or upstream, whose hold was then released (see routing.ts).
 */
interface Asker extends Requester {
  counted: boolean;
}

/**
 * A refusal by a budget names it (`blocking`); one by a rate limit has none (and was counted as
 * rate_limited). An admission carries the budgets as they were before its own hold (`before`),
 * which the routing step reads (the states as they are when no budget has routing rules: then
 * nothing reads their numbers).
 */
type Attempt = { ok: true; admitted: AdmittedRequest; before: BudgetState[] } | { ok: false; refusal: Refusal; blocking: BudgetState | null };

/** Admission for one model on one upstream (attemptSteps), a value when nothing on the way was a promise. */
const admitAs = (...args: Parameters<typeof attemptSteps>): MaybePromise<Attempt> => runSteps(attemptSteps(...args));

/** Admission for one model on one upstream: its price, the prompt's size for it, then rate limits and budgets at once. */
function* attemptSteps(
  services: ProxyServices,
  input: AdmissionInput,
  requester: Asker,
  model: string,
  upstream: Upstream,
  downgradeCeiling: number | null,
  failover = false,
): Steps<Attempt> {
  const { store, clock, config } = services;
  const { subject, sessionId, tags } = requester;

  const price = priceFor(services, model, upstream);
  const refuseIfDollarBudget = price === null && config.proxy.unpricedModels === 'refuse';
  const large = input.bodyBytes >= PRECHECK_BODY_BYTES;
  const states = refuseIfDollarBudget || large ? ((yield store.budgetStates(scopesOf(subject, upstream.name), clock.now())) as BudgetState[]).filter((s) => coversModel(s.budget, model)) : null;
  if (refuseIfDollarBudget) {
    const dollarBudget = states?.find((s) => s.budget.limitMicros !== null && s.budget.onLimit !== 'alert-only');
    if (dollarBudget) {
      throw new OpenAIError(
        400,
        'invalid_request_error',
        'model_not_priced',
        `The model \`${model}\` has no price, so the dollar budget of ${formatScope(dollarBudget.budget.scope)} cannot be kept. Ask your admin to add it under "prices" in the config.`,
        'model',
      );
    }
  }
  if (large && states) {
    // The least this request could need: no prompt at all, and its minimum output.
    const minOutput = Math.min(Math.max(0, input.wantOutput), input.minOutput ?? 1);
    const least: Quote = {
      tokens: 0,
      micros: 0,
      output: { wantTokens: minOutput, minTokens: minOutput, microsPerMillion: price?.outputMicrosPerMillion ?? 0 },
      ...(downgradeCeiling === null ? {} : { downgradeCeiling }),
      ...(price !== null && isFree(price) ? { free: true } : {}),
    };
    const decision = admit(states, least);
    if (!decision.ok) {
      const blocking = states[decision.blockingIndex] as BudgetState;
      const refusal = quotaRefusal(blocking, config.statusLevels, clock.now(), { quote: least, prompt: 'unknown' }, requester);
      Object.assign(refusal.headers, quotaHeaders(states, config.statusLevels));
      return { ok: false, refusal, blocking };
    }
  }

  // Counted in place (most prompts) or on the counting thread: only the latter is waited for.
  const promptTokens = (yield input.countPrompt(model)) as number;
  // Rate limits are checked by the store, in the same atomic step as the budgets (Meter.admit).
  const rateTokens = promptTokens + input.wantOutput;

  const admitted = (yield Meter.admit(
    { store, clock, metrics: services.metrics, holdTtlMs: config.holdTtlMs, leaseTokens: config.proxy.leaseTokens },
    {
      holdId: newRequestId(clock.now()),
      subject,
      model,
      upstream: upstream.name,
      promptTokens,
      price,
      wantOutput: input.wantOutput,
      streaming: input.streaming,
      ...(input.minOutput === undefined ? {} : { minOutput: input.minOutput }),
      ...(input.promptCacheWrite === undefined ? {} : { promptCacheWrite: input.promptCacheWrite }),
      ...(downgradeCeiling === null ? {} : { downgradeCeiling }),
      ...(failover ? { failover } : {}),
      sessionId,
      tags,
      rates: services.rateLimiter.request(rateTokens, requester.counted),
    },
  )) as Admitted;
  if (!admitted.ok && 'rateLimited' in admitted) {
    services.metrics.recordOutcome(model, 'rate_limited');
    return { ok: false, refusal: rateRefusal(admitted.rateLimited, rateLimitHeaders(admitted.rates, clock.now(), rateTokens), requester), blocking: null };
  }
  if (!admitted.ok) {
    const refusal = quotaRefusal(admitted.blocking, config.statusLevels, clock.now(), { quote: admitted.quote, prompt: 'counted' }, requester);
    Object.assign(refusal.headers, quotaHeaders(admitted.budgets, config.statusLevels), rateLimitHeaders(admitted.rates ?? [], clock.now()));
    return { ok: false, refusal, blocking: admitted.blocking };
  }
  const { meter, budgets } = admitted;
  requester.counted = true;
  const rateHeaders = rateLimitHeaders((admitted.rates ?? []).map((c) => ({ ...c, counts: countedOnce(c.counts, rateTokens, false) })), clock.now());
  const withRates = Object.keys(rateHeaders).length > 0;
  // quotaHeaders answers a new object each time: the rate headers go into it (when there are any).
  const headersWith = (charged: Charge) => {
    const headers = quotaHeaders(settledStates(budgets, meter.heldAtAdmission, charged), config.statusLevels);
    return withRates ? Object.assign(headers, rateHeaders) : headers;
  };
  const held = meter.heldAtAdmission;
  // Only a budget's routing rules read these (fallbackFor): without any, the states as they are do.
  const routes = budgets.some((s) => routingRules(s.budget).length > 0);
  const before = routes ? budgets.map((s) => ({ ...s, usage: { ...s.usage, reservedTokens: s.usage.reservedTokens - held.tokens, reservedMicros: s.usage.reservedMicros - held.micros } })) : budgets;
  return {
    ok: true,
    before,
    admitted: {
      subject,
      model,
      downgradedFrom: null,
      upstream,
      meter,
      failover: null,
      outputLimit: admitted.outputLimit,
      streamHeaders: () => headersWith({ tokens: promptTokens, micros: costMicros(promptTokens, price?.inputMicrosPerMillion ?? 0) }),
      headersAfter: (entry) => headersWith(entry ? { tokens: entry.inputTokens + entry.outputTokens, micros: entry.costMicros } : { tokens: 0, micros: 0 }),
    },
  };
}
