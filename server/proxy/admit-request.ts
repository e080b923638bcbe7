import type { Context } from 'hono';
import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatScope, scopesOf, type RequestSubject } from '../quota/scope.js';
import type { BudgetState, Store } from '../store/types.js';
import { identify, sessionAndTags } from './identity.js';
import { Meter } from './meter.js';
import { OpenAIError } from './openai-error.js';
import type { PriceBook } from './pricing.js';
import { quotaHeaders } from './quota-headers.js';
import { newRequestId } from './request-id.js';
import type { RateLimiter } from './rate-limiter.js';
import { quotaRefusal, rateRefusal } from './refusals.js';
import type { TokenCounter } from './token-count.js';
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
}

export interface AdmissionInput {
  model: string;
  /** The body's OpenAI `user` field: a service key may name the end user with it. */
  bodyUser: unknown;
  /** Prompt tokens for a model, counted only once the request is known to be allowed this far. */
  countPrompt: (model: string) => number;
  /** The output the request asks for (its max tokens, or the model's cap). 0 for embeddings. */
  wantOutput: number;
  streaming: boolean;
  /** The least output the upstream accepts as a limit (see Meter). */
  minOutput?: number;
  /** Whether a budget whose `onLimit` is `downgrade` may send this request to its cheaper model. */
  downgradable: boolean;
}

export interface AdmittedRequest {
  subject: RequestSubject;
  /** The model to ask upstream: the client's, or a budget's cheaper model at its limit. */
  model: string;
  /** The client's model when a budget downgraded the request, else null. */
  downgradedFrom: string | null;
  upstream: Upstream;
  meter: Meter;
  /** The output limit to forward upstream (the tightest budget's room, at most what was asked). */
  outputLimit: number;
  /** x-quota-* and x-ratelimit-* headers for the response. */
  headers: Record<string, string>;
}

/**
 * The steps every metered request takes before it goes upstream, in order: who pays, which
 * upstream, the model's price, the prompt's size, rate limits, and the atomic admission against
 * every budget that applies. Throws the OpenAI-shaped refusal of the first step that says no.
 */
export async function admitRequest(c: Context, services: ProxyServices, input: AdmissionInput): Promise<AdmittedRequest> {
  const subject = await identify(c, services.store, input.bodyUser);
  const { sessionId, tags } = sessionAndTags(c);
  const first = await admitAs(services, input, subject, { sessionId, tags }, input.model, null);
  if (first.ok) return first.admitted;
  // At a `downgrade` budget's limit the request goes to its cheaper model instead, counted against
  // that budget up to the configured ceiling (the budget's limit × downgradeCeilingPercent).
  const { budget } = first.blocking;
  if (input.downgradable && budget.onLimit === 'downgrade' && budget.downgradeTo && budget.downgradeTo !== input.model) {
    const second = await admitAs(services, input, subject, { sessionId, tags }, budget.downgradeTo, services.config.proxy.downgradeCeilingPercent / 100);
    if (second.ok) {
      const { admitted } = second;
      return { ...admitted, downgradedFrom: input.model, headers: { ...admitted.headers, 'x-quota-downgraded-from': input.model } };
    }
    services.metrics.recordOutcome(budget.downgradeTo, 'refused');
    throw second.refusal;
  }
  services.metrics.recordOutcome(input.model, 'refused');
  throw first.refusal;
}

type Attempt = { ok: true; admitted: AdmittedRequest } | { ok: false; refusal: OpenAIError; blocking: BudgetState };

/** Admission for one model: its upstream, its price, the prompt's size for it, rate limits, budgets. */
async function admitAs(
  services: ProxyServices,
  input: AdmissionInput,
  subject: RequestSubject,
  recordWith: { sessionId: string | null; tags: Record<string, string> },
  model: string,
  downgradeCeiling: number | null,
): Promise<Attempt> {
  const { store, clock, config } = services;
  const upstream = services.upstreams.forModel(model);
  if (!upstream) {
    throw new OpenAIError(404, 'invalid_request_error', 'model_not_found', `The model \`${model}\` does not exist or you do not have access to it.`, 'model');
  }

  const price = services.prices.priceOf(model);
  if (price === null && config.proxy.unpricedModels === 'refuse') {
    const states = await store.budgetStates(scopesOf(subject), clock.now());
    const dollarBudget = states.find((s) => s.budget.limitMicros !== null && s.budget.onLimit !== 'alert-only');
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

  const promptTokens = input.countPrompt(model);
  const rate = services.rateLimiter.enabled ? services.rateLimiter.take(subject, promptTokens + input.wantOutput, clock.now()) : null;
  if (rate && !rate.ok) {
    services.metrics.recordOutcome(model, 'rate_limited');
    throw rateRefusal(rate);
  }

  const admitted = await Meter.admit(
    { store, clock, metrics: services.metrics, holdTtlMs: config.holdTtlMs, leaseTokens: config.proxy.leaseTokens },
    {
      holdId: newRequestId(clock.now()),
      subject,
      model,
      promptTokens,
      price,
      wantOutput: input.wantOutput,
      streaming: input.streaming,
      ...(input.minOutput === undefined ? {} : { minOutput: input.minOutput }),
      ...(downgradeCeiling === null ? {} : { downgradeCeiling }),
      ...recordWith,
    },
  );
  if (!admitted.ok) {
    const refusal = quotaRefusal(admitted.blocking, config.statusLevels, clock.now());
    Object.assign(refusal.headers, quotaHeaders(subject, admitted.budgets, config.statusLevels), rate?.headers);
    return { ok: false, refusal, blocking: admitted.blocking };
  }
  return {
    ok: true,
    admitted: {
      subject,
      model,
      downgradedFrom: null,
      upstream,
      meter: admitted.meter,
      outputLimit: admitted.outputLimit,
      headers: { ...quotaHeaders(subject, admitted.budgets, config.statusLevels), ...rate?.headers },
    },
  };
}
