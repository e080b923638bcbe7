import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import { scopesOf, type RequestSubject } from '../quota/scope.js';
import type { Store } from '../store/types.js';
import { identify, sessionAndTags } from './identity.js';
import { Meter } from './meter.js';
import { OpenAIError } from './openai-error.js';
import type { PriceBook } from './pricing.js';
import { quotaHeaders } from './quota-headers.js';
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
}

export interface AdmissionInput {
  model: string;
  /** The body's OpenAI `user` field: a service key may name the end user with it. */
  bodyUser: unknown;
  /** Prompt tokens, counted only once the request is known to be allowed this far. */
  countPrompt: () => number;
  /** The output the request asks for (its max tokens, or the model's cap). 0 for embeddings. */
  wantOutput: number;
  streaming: boolean;
  /** The least output the upstream accepts as a limit (see Meter). */
  minOutput?: number;
}

export interface AdmittedRequest {
  subject: RequestSubject;
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
  const { store, clock, config } = services;
  const subject = await identify(c, store, input.bodyUser);
  const { sessionId, tags } = sessionAndTags(c);

  const upstream = services.upstreams.forModel(input.model);
  if (!upstream) {
    throw new OpenAIError(404, 'invalid_request_error', 'model_not_found', `The model \`${input.model}\` does not exist or you do not have access to it.`, 'model');
  }

  const price = services.prices.priceOf(input.model);
  if (price === null && config.proxy.unpricedModels === 'refuse') {
    const states = await store.budgetStates(scopesOf(subject), clock.now());
    const dollarBudget = states.find((s) => s.budget.limitMicros !== null && s.budget.onLimit !== 'alert-only');
    if (dollarBudget) {
      throw new OpenAIError(
        400,
        'invalid_request_error',
        'model_not_priced',
        `The model \`${input.model}\` has no price, so the dollar budget of ${dollarBudget.budget.scope.kind === 'global' ? 'global' : `${dollarBudget.budget.scope.kind}:${dollarBudget.budget.scope.id}`} cannot be kept. Ask your admin to add it under "prices" in the config.`,
        'model',
      );
    }
  }

  const promptTokens = input.countPrompt();
  const rate = services.rateLimiter.enabled ? services.rateLimiter.take(subject, promptTokens + input.wantOutput, clock.now()) : null;
  if (rate && !rate.ok) throw rateRefusal(rate);

  const admitted = await Meter.admit(
    { store, clock, holdTtlMs: config.holdTtlMs, leaseTokens: config.proxy.leaseTokens },
    {
      holdId: `req_${randomUUID()}`,
      subject,
      model: input.model,
      promptTokens,
      price,
      wantOutput: input.wantOutput,
      streaming: input.streaming,
      ...(input.minOutput === undefined ? {} : { minOutput: input.minOutput }),
      sessionId,
      tags,
    },
  );
  if (!admitted.ok) {
    const refusal = quotaRefusal(admitted.blocking, config.statusLevels, clock.now());
    Object.assign(refusal.headers, quotaHeaders(subject, admitted.budgets, config.statusLevels), rate?.headers);
    throw refusal;
  }
  return {
    subject,
    upstream,
    meter: admitted.meter,
    outputLimit: admitted.outputLimit,
    headers: { ...quotaHeaders(subject, admitted.budgets, config.statusLevels), ...rate?.headers },
  };
}
