import { costMicros, type Quote } from '../quota/admission.js';
import { formatScope, type RequestSubject } from '../quota/scope.js';
import { budgetStatus } from '../quota/status-report.js';
import { microsToUsd, type StatusLevels } from '../quota/status.js';
import type { BudgetState } from '../store/types.js';
import type { RateLimited } from '../quota/rate-limits.js';

/** Who is asking: the payer, and the session and tags the ledger records a request under. */
export interface Requester {
  subject: RequestSubject;
  sessionId: string | null;
  tags: Record<string, string>;
}

interface RefusalFacts {
  status: 429;
  /** Names the budget, its usage, limit and reset (or the rate limit and when to try again). */
  message: string;
  headers: Record<string, string>;
  /** Whom it refused, so that it can be answered as a message and recorded (refusal-answer.ts). */
  refused: Requester;
}

/**
 * A quota or rate refusal, as a value: admission returns it and the route renders it through the
 * request's dialect, as an error in that API's shape or (refusalStyle "answer") as the assistant's
 * answer. `limited` is what a rate limit counted (OpenAI names it in its error's `type`).
 */
export type Refusal = (RefusalFacts & { kind: 'quota' }) | (RefusalFacts & { kind: 'rate'; limited: 'requests' | 'tokens' });

/** The code a refusal goes by in `x-quota-refused` and OpenAI's `code`. */
export const refusalCode = (refusal: Pick<Refusal, 'kind'>): string => (refusal.kind === 'quota' ? 'insufficient_quota' : 'rate_limit_exceeded');

const describeWindow = (state: BudgetState): string => {
  const w = state.budget.window;
  if (w.kind === 'rolling') return `in the last ${w.hours} h`;
  if (w.kind === 'total') return 'in total';
  return `this ${w.kind} (${w.timeZone})`;
};

const amount = (n: number, unit: 'tokens' | 'usd') => (unit === 'usd' ? `$${n.toFixed(2)}` : `${n.toLocaleString('en-US')} tokens`);

/** What the refused request asked to set aside, and whether its prompt was counted (see PRECHECK_BODY_BYTES). */
export interface RefusedNeed {
  quote: Quote;
  prompt: 'counted' | 'unknown';
}

/**
 * A quota refusal (rendered as OpenAI's own 429 `insufficient_quota` body, which LobeChat and the SDKs
 * already recognise); `x-should-retry: false` stops the SDKs from retrying a request that cannot
 * succeed before the reset.
 * The message names the budget, its usage, limit and reset, and says which of three things
 * happened: the budget is spent; requests in flight hold what is left; or something is left, but
 * less than this request needs (its prompt and the least output it may start with).
 */
export function quotaRefusal(blocking: BudgetState, levels: StatusLevels, now: number, need: RefusedNeed, refused: Requester): Refusal {
  const s = budgetStatus(blocking, levels);
  const tokens = s.limitTokens !== null && (s.limitUsd === null || (s.usedTokens + s.reservedTokens) / s.limitTokens >= (s.usedUsd + s.reservedUsd) / s.limitUsd);
  const unit = tokens ? 'tokens' : 'usd';
  const used = tokens ? s.usedTokens : s.usedUsd;
  const limit = tokens ? (s.limitTokens as number) : (s.limitUsd as number);
  const reserved = tokens ? s.reservedTokens : s.reservedUsd;
  const remaining = (tokens ? s.remainingTokens : s.remainingUsd) ?? 0;
  const { models } = blocking.budget;
  const { scope } = blocking.budget;
  // A provider account's budget is the deployment's, not the caller's own.
  const whose = scope.kind === 'upstream' ? 'the provider account budget' : 'your lobe-quota budget';
  const name = `${whose} ${formatScope(scope)}${models ? ` for ${models.join(', ')}` : ''}`;
  const usage = `${amount(used, unit)} of ${amount(limit, unit)} used ${describeWindow(blocking)}`;
  const inFlight = reserved > 0 ? `, ${amount(reserved, unit)} more held by requests in flight` : '';
  let what: string;
  if (used >= limit) {
    what = `You exceeded ${name}: ${usage}${inFlight}.`;
  } else if (remaining <= 0) {
    what = `No room is left in ${name} right now: ${usage}${inFlight}. Held room comes back as those requests end.`;
  } else {
    const minOutput = need.quote.output?.minTokens ?? 0;
    const needed = tokens ? need.quote.tokens + minOutput : microsToUsd(need.quote.micros + costMicros(minOutput, need.quote.output?.microsPerMillion ?? 0));
    const size = need.prompt === 'counted' ? `about ${amount(needed, unit)} (its prompt and at least ${minOutput.toLocaleString('en-US')} output tokens)` : `at least ${amount(needed, unit)} of output before its prompt`;
    what = `This request does not fit in ${name}: it needs ${size}, but only ${amount(remaining, unit)} remain (${usage}${inFlight}).`;
  }
  const reset = s.resetsAt === null ? 'It does not reset; ask your admin to raise it.' : `It resets at ${s.resetsAt}.`;
  const headers: Record<string, string> = { 'x-should-retry': 'false' };
  if (blocking.resetsAt !== null) headers['retry-after'] = String(Math.max(1, Math.ceil((blocking.resetsAt - now) / 1000)));
  return { kind: 'quota', status: 429, message: `${what} ${reset}`, headers, refused };
}

const PER: Partial<Record<RateLimited['field'], string>> = {
  requestsPerMinute: 'requests per minute',
  requestsPerHour: 'requests per hour',
  requestsPerDay: 'requests per day',
  tokensPerMinute: 'tokens per minute',
};

/**
 * A rate refusal (OpenAI's 429 `rate_limit_exceeded`), with `Retry-After` (the seconds until the
 * window that refused it ends; a second for requests in flight) and OpenAI's x-ratelimit-* headers.
 */
export function rateRefusal(limited: RateLimited, rateHeaders: Record<string, string>, refused: Requester): Refusal {
  const retryAfterSeconds = Math.max(1, Math.ceil(limited.retryAfterMs / 1000));
  const what = PER[limited.field] ?? 'requests in flight at a time';
  const message = `Rate limit reached for this ${limited.scope.kind}: ${limited.limit.toLocaleString('en-US')} ${what}. Try again in ${retryAfterSeconds}s.`;
  const headers = { ...rateHeaders, 'retry-after': String(retryAfterSeconds) };
  return { kind: 'rate', limited: limited.field === 'tokensPerMinute' ? 'tokens' : 'requests', status: 429, message, headers, refused };
}
