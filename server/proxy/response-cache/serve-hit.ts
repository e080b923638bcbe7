import type { Context } from 'hono';
import { coversModel } from '../../quota/budgets.js';
import { scopesOf, type RequestSubject } from '../../quota/scope.js';
import type { Usage } from '../../store/types.js';
import type { ProxyServices } from '../admit-request.js';
import { sessionAndTags } from '../identity.js';
import { quotaHeaders } from '../quota-headers.js';
import { rateLimitHeaders } from '../rate-limiter.js';
import { rateRefusal, type Refusal } from '../refusals.js';
import { newRequestId } from '../request-id.js';
import { sendWhole, streamSinkFor } from '../response-sink.js';
import { CACHE_HEADER } from './eligibility.js';
import type { CachedAnswer, FirstCharge } from './response-cache.js';

/** What a hit is charged, and what it saved: the first answer's charge minus that. */
export interface HitCharge {
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
  savedTokens: number;
  savedMicros: number;
}

/** `fraction` of the first charge, each part rounded up (so a hit never costs less than its share); the rest is saved. */
export function hitCharge(first: FirstCharge, fraction: number): HitCharge {
  // Rounded to a millionth first, so binary noise (0.07 × 100 = 7.000000000000001) does not round up a whole unit.
  const part = (n: number) => Math.min(n, Math.ceil(Math.round(n * fraction * 1e6) / 1e6));
  const inputTokens = part(first.inputTokens);
  const outputTokens = part(first.outputTokens);
  const costMicros = part(first.costMicros);
  return {
    inputTokens,
    outputTokens,
    costMicros,
    savedTokens: first.inputTokens + first.outputTokens - inputTokens - outputTokens,
    savedMicros: first.costMicros - costMicros,
  };
}

/**
 * A hit answered; refused by a rate limit (rendered by the route in its dialect); or one whose
 * charge no budget has room for, which the route then treats as any request (admission refuses it,
 * or a `downgrade` budget serves it with its cheaper model).
 */
export type HitOutcome = { kind: 'served'; response: Response } | { kind: 'refused'; refusal: Refusal } | { kind: 'unaffordable' };

/**
 * Answers a request from the cache, without going upstream: it is admitted against the budgets for
 * what it will be charged (a hold, when that is more than nothing), counted by the rate limits,
 * recorded in the ledger (`source: "cache"`, outcome ok, the charge, and what it saved), and then
 * the stored answer is sent as it was first sent: the stream's bytes, or the whole body.
 */
export async function serveHit(c: Context, services: ProxyServices, subject: RequestSubject, answer: CachedAnswer): Promise<HitOutcome> {
  const { store, clock, config, metrics } = services;
  const startedAt = clock.now();
  const { sessionId, tags } = sessionAndTags(c);
  const charge = hitCharge(answer.charge, config.cache.chargeFraction);
  const holdId = newRequestId(startedAt);
  const tokens = charge.inputTokens + charge.outputTokens;
  // Rate limits count a hit as any request, in the store's admission. A charged hit must fit the
  // budgets, as any request must; a free one changes none, so it is held against the limits alone.
  const charged = tokens > 0 || charge.costMicros > 0;
  const reserved = await store.reserve({
    holdId,
    subject,
    quote: { tokens, micros: charge.costMicros },
    now: startedAt,
    ttlMs: config.holdTtlMs,
    route: { model: answer.charge.model, upstream: null },
    ...(charged ? {} : { ratesOnly: true }),
    rates: services.rateLimiter.request(tokens),
  });
  if (!reserved.ok && 'rateLimited' in reserved) {
    metrics.recordOutcome(answer.charge.model, 'rate_limited');
    return { kind: 'refused', refusal: rateRefusal(reserved.rateLimited, rateLimitHeaders(reserved.rates, startedAt, tokens), { subject, sessionId, tags }) };
  }
  if (!reserved.ok) return { kind: 'unaffordable' };
  const rateHeaders = rateLimitHeaders(reserved.rates ?? [], startedAt);

  const now = clock.now();
  const usage: Usage = {
    model: answer.charge.model,
    inputTokens: charge.inputTokens,
    outputTokens: charge.outputTokens,
    cachedTokens: 0,
    reasoningTokens: 0,
    costMicros: charge.costMicros,
    source: 'cache',
    outcome: 'ok',
    latencyMs: Math.max(0, now - startedAt),
    sessionId,
    tags,
    savedTokens: charge.savedTokens,
    savedMicros: charge.savedMicros,
  };
  let settled;
  try {
    settled = await store.settle({ holdId, subject, now, usage });
  } catch (error) {
    await store.release(holdId).catch(() => undefined);
    throw error;
  }
  metrics.recordSettled(settled.entry, { promptTokens: charge.inputTokens, outputTokens: null });
  metrics.recordCacheHit({ tokens: charge.savedTokens, micros: charge.savedMicros });

  const states = (await store.budgetStates(scopesOf(subject), now)).filter((s) => coversModel(s.budget, answer.charge.model));
  const headers = { ...quotaHeaders(states, config.statusLevels), ...rateHeaders, 'content-type': answer.contentType, [CACHE_HEADER]: 'hit' };
  if (!answer.streamed) return { kind: 'served', response: sendWhole(c, answer.status, headers, answer.body) };
  const sink = streamSinkFor(c);
  sink.start(answer.status, { ...headers, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  // Written at once: the answer is known, and there is nothing to meter as it goes.
  await sink.write(answer.body.toString('utf8'));
  sink.end();
  return { kind: 'served', response: sink.response };
}
