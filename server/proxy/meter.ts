import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics/metrics.js';
import { costMicros, type Quote } from '../quota/admission.js';
import type { RequestSubject } from '../quota/scope.js';
import type { RateCheck, RateLimited } from '../quota/rate-limits.js';
import type { BudgetState, Hold, LedgerEntry, Outcome, RateRequest, ReserveRequest, ReserveResult, SettleResult, Store, UsageSource } from '../store/types.js';
import type { MaybePromise } from '../util/maybe-sync.js';
import { isFree, ratesAt, usageCostMicros, type ModelPrice, type TokenRates } from './pricing.js';
import type { PromptCacheWrite } from './dialects/dialect.js';

export interface MeterServices {
  store: Store;
  clock: Clock;
  /** Counts each request's end here, where it ends exactly once. */
  metrics: Metrics;
  holdTtlMs: number;
  /** Output tokens a stream holds at a time, and grows its hold by. */
  leaseTokens: number;
}

export interface MeterRequest {
  holdId: string;
  subject: RequestSubject;
  model: string;
  /** The upstream (provider account) it goes to: its budgets apply too. */
  upstream?: string | null;
  promptTokens: number;
  price: ModelPrice | null;
  /** The most output the request may produce: its max_tokens, or the model's output cap. */
  wantOutput: number;
  /** Streams hold a lease that grows; other requests hold their whole allowance up front. */
  streaming: boolean;
  /** The least output worth starting the request for (default 1; an API may demand more). */
  minOutput?: number;
  /** The prompt is to be written to a cache: quoted at the write price, which is above the input price. */
  promptCacheWrite?: PromptCacheWrite;
  /** Set for a downgraded request: `downgrade` budgets admit it up to their limit × this. */
  downgradeCeiling?: number;
  /** Another upstream can take the request (see Quote.failover). */
  failover?: boolean;
  sessionId: string | null;
  tags: Record<string, string>;
  /** Request and concurrency limits, checked by the store with the budgets (see ReserveRequest.rates). */
  rates?: RateRequest;
}

/**
 * The most a prompt token may be billed at: the input price, or a cache write's when the request
 * asks for its prompt to be cached (Anthropic bills a 5-minute write at 1.25×, an hour's at 2× the
 * input), so that a dollar budget is not overspent by the write surcharge.
 */
export function promptRate(rates: TokenRates, cacheWrite: PromptCacheWrite | undefined): number {
  const input = rates.inputMicrosPerMillion;
  if (cacheWrite === undefined) return input;
  const fiveMinutes = rates.cacheWriteMicrosPerMillion ?? input;
  const write = cacheWrite === '1h' ? (rates.cacheWrite1hMicrosPerMillion ?? fiveMinutes) : fiveMinutes;
  return Math.max(input, write);
}

/**
 * What the upstream reported, when it did, in OpenAI's terms: `inputTokens` is the whole prompt,
 * of which `cachedTokens` were read from a prompt cache and `cacheWriteTokens` written to one
 * (Anthropic's cache classes), `cacheWrite1hTokens` of those for an hour; reasoning is part of the
 * output.
 */
export interface UpstreamUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** Absent: none. */
  cacheWriteTokens?: number;
  /** Part of `cacheWriteTokens`; absent: none. */
  cacheWrite1hTokens?: number;
}

export type Admitted =
  | {
      ok: true;
      meter: Meter;
      /** The output limit to forward upstream, so the model itself stops at the budget. */
      outputLimit: number;
      /** The budgets at admission, this request's hold included in what they have reserved. */
      budgets: BudgetState[];
      /** With the request's `rates`: the limits in force and the counts before this request. */
      rates?: RateCheck[];
    }
  | { ok: false; blocking: BudgetState; budgets: BudgetState[]; quote: Quote; rates?: RateCheck[] }
  | { ok: false; rateLimited: RateLimited; rates: RateCheck[]; budgets: BudgetState[]; quote: Quote };

/** The rates a request is quoted at (its tier at the prompt as counted); null when it has no price. */
const quotedRates = (request: MeterRequest): TokenRates | null => (request.price ? ratesAt(request.price, request.promptTokens) : null);

/**
 * One request's way through the budgets: admitted with a hold, its output counted as it arrives
 * (a stream's lease growing as needed), and then settled or released — exactly once.
 */
export class Meter {
  private counted = 0;
  private allowance: number;
  private finished = false;
  /** The ledger entry this request was settled with, once it was (null when released). */
  settledEntry: LedgerEntry | null = null;
  private readonly startedAt: number;
  /**
   * Renews the hold while the request runs, so only a request that died lets it expire. It stops
   * when the request is settled or released, and when its connection is gone (`stopRenewing`):
   * then a hold that something failed to settle still expires after `holdTtlMs`.
   */
  private renewal: Renewals | null;

  private constructor(
    private readonly services: MeterServices,
    private readonly request: MeterRequest,
    /** What the hold set aside at admission (before any lease extension). */
    readonly heldAtAdmission: Hold,
    /**
     * The most output the request may produce (forwarded upstream as its limit when the budget
     * clamped it): output charged beyond it is an overrun, recorded with the entry.
     */
    readonly outputLimit: number,
  ) {
    this.allowance = heldAtAdmission.outputTokens;
    this.startedAt = services.clock.now();
    this.renewal = renewalsEvery(Math.max(1_000, Math.floor(services.holdTtlMs / 3)));
    this.renewal.add(this);
  }

  /** Pushes the hold's expiry a TTL past now (see `renewal`). */
  renew(): void {
    const { store, clock, holdTtlMs } = this.services;
    void store.renew(this.request.holdId, clock.now(), holdTtlMs).catch(() => undefined);
  }

  /**
   * Reserves the request's hold. On a store that admits in memory (Store.reserveNow) the admission
   * is answered at once, without a promise; elsewhere it is the store's promise.
   */
  static admit(services: MeterServices, request: MeterRequest): MaybePromise<Admitted> {
    // A prompt counted above a long-context threshold is quoted, and its output held, at that tier.
    const rates = quotedRates(request);
    const inputPrice = rates ? promptRate(rates, request.promptCacheWrite) : 0;
    const outputPrice = rates?.outputMicrosPerMillion ?? 0;
    // Prompt plus one output token must fit (DESIGN); embeddings produce no output at all.
    const want = Math.max(0, request.wantOutput);
    const quote: Quote = {
      tokens: request.promptTokens,
      micros: costMicros(request.promptTokens, inputPrice),
      output: {
        wantTokens: request.streaming ? Math.min(want, services.leaseTokens) : want,
        minTokens: Math.min(want, request.minOutput ?? 1),
        microsPerMillion: outputPrice,
      },
      ...(request.downgradeCeiling === undefined ? {} : { downgradeCeiling: request.downgradeCeiling }),
      // A model priced at $0 is never refused by a dollar budget (it still spends tokens).
      ...(request.price !== null && isFree(request.price) ? { free: true } : {}),
      ...(request.failover ? { failover: true } : {}),
    };
    const reservation: ReserveRequest = {
      holdId: request.holdId,
      subject: request.subject,
      quote,
      now: services.clock.now(),
      ttlMs: services.holdTtlMs,
      route: { model: request.model, upstream: request.upstream ?? null },
      // Kept with the hold, so that if this process dies mid-request the request is still charged.
      pending: {
        model: request.model,
        upstream: request.upstream ?? null,
        inputTokens: request.promptTokens,
        price: request.price,
        sessionId: request.sessionId,
        tags: request.tags,
      },
      ...(request.rates && { rates: request.rates }),
    };
    const { store } = services;
    const admitted = (result: ReserveResult): Admitted => {
      if (!result.ok) return { ...result, quote };
      const outputLimit = Math.min(want, result.outputRoom);
      return { ok: true, meter: new Meter(services, request, result.hold, outputLimit), outputLimit, budgets: result.budgets, ...(result.rates && { rates: result.rates }) };
    };
    return store.reserveNow ? admitted(store.reserveNow(reservation)) : store.reserve(reservation).then(admitted);
  }

  get model(): string {
    return this.request.model;
  }

  /** Output tokens counted so far. */
  get output(): number {
    return this.counted;
  }

  /**
   * Counts output that is about to be delivered. Returns false when it does not fit and no budget
   * has room to grow the hold: the caller must cut the stream before delivering it.
   */
  async addOutput(tokens: number): Promise<boolean> {
    const needed = this.counted + tokens - this.allowance;
    if (needed > 0) {
      // Grow by a whole lease when there is room, else by just what this piece needs.
      const deliveredAfter = this.counted + tokens;
      const grown = (await this.grow(Math.max(needed, this.services.leaseTokens), deliveredAfter)) || (await this.grow(needed, deliveredAfter));
      if (!grown) return false;
    }
    this.counted += tokens;
    return true;
  }

  /**
   * Counts output that was already produced and cannot be held back (a whole answer's, counted
   * after it came): charged as it is, within the allowance or not (see `overrunTokens`).
   */
  recordOutput(tokens: number): void {
    this.counted += Math.max(0, tokens);
  }

  /** Grows the hold by `tokens`; `deliveredAfter` (the count once the piece that needs it is out) is what a crash from here on still charges. */
  private async grow(tokens: number, deliveredAfter: number): Promise<boolean> {
    const price = quotedRates(this.request)?.outputMicrosPerMillion ?? 0;
    const now = this.services.clock.now();
    const result = await this.services.store.extend(this.request.holdId, { tokens, micros: costMicros(tokens, price) }, now, this.services.holdTtlMs, deliveredAfter);
    if (result.ok) this.allowance += tokens;
    return result.ok;
  }

  /**
   * Records the request in the ledger: the upstream's numbers when it reported them, else ours
   * (the prompt as counted at admission and the output counted so far).
   */
  settle(upstream: UpstreamUsage | null, outcome: Outcome): Promise<SettleResult | null> {
    return upstream ? this.record(upstream, 'upstream', outcome) : this.settleDelivered(null, outcome);
  }

  /**
   * Records a request that ended before the upstream's last word (cut at the budget, broken off):
   * the output counted here, which is what was delivered, with the prompt as the upstream reported
   * it along the way (Anthropic and Gemini report it as a stream starts), else as counted at
   * admission. Its source is our estimate: the output's count is ours.
   */
  settleDelivered(reported: UpstreamUsage | null, outcome: Outcome): Promise<SettleResult | null> {
    const output = { outputTokens: this.counted, reasoningTokens: Math.min(reported?.reasoningTokens ?? 0, this.counted) };
    const usage = reported ? { ...reported, ...output } : { inputTokens: this.request.promptTokens, cachedTokens: 0, ...output };
    return this.record(usage, 'estimated', outcome);
  }

  private async record(usage: UpstreamUsage, source: UsageSource, outcome: Outcome): Promise<SettleResult | null> {
    if (this.finished) return null;
    this.finish();
    const now = this.services.clock.now();
    let settled: SettleResult;
    try {
      settled = await this.services.store.settle({
        holdId: this.request.holdId,
        subject: this.request.subject,
        now,
        usage: {
          model: this.request.model,
          upstream: this.request.upstream ?? null,
          ...usage,
          costMicros: this.request.price ? usageCostMicros(this.request.price, usage) : 0,
          source,
          outcome,
          latencyMs: Math.max(0, now - this.startedAt),
          sessionId: this.request.sessionId,
          tags: this.request.tags,
          overrunTokens: Math.max(0, usage.outputTokens - this.outputLimit),
        },
      });
    } catch (error) {
      // The ledger refused it: do not leave the hold behind.
      await this.services.store.release(this.request.holdId);
      throw error;
    }
    this.settledEntry = settled.entry;
    // Our own output count is only worth comparing when we counted as it went (streams).
    const estimate = { promptTokens: this.request.promptTokens, outputTokens: this.request.streaming ? this.counted : null };
    if (!settled.duplicate) this.services.metrics.recordSettled(settled.entry, estimate);
    return settled;
  }

  /** Gives the hold back without charging: the upstream failed, timed out or broke off. */
  async release(): Promise<void> {
    if (this.finished) return;
    this.finish();
    this.services.metrics.recordOutcome(this.request.model, 'upstream_error');
    await this.services.store.release(this.request.holdId);
  }

  /**
   * Ends a request that stopped on an error after admission (ours or the upstream's): output already
   * counted went to the client and is charged with the prompt (`upstream_error`, the prompt as the
   * upstream `reported` it, if it did); a request that delivered nothing is released. Does nothing once the request was settled or released.
   */
  async abandon(reported: UpstreamUsage | null = null): Promise<void> {
    if (this.finished) return;
    if (this.counted > 0) await this.settleDelivered(reported, 'upstream_error');
    else await this.release();
  }

  /** The request's connection is gone: stop keeping its hold alive (see `renewal`). */
  stopRenewing(): void {
    this.renewal?.delete(this);
    this.renewal = null;
  }

  private finish(): void {
    this.finished = true;
    this.stopRenewing();
  }
}

/**
 * The meters whose holds are renewed every `periodMs`: one timer for all of them, rather than one
 * set and cleared on the way of every request. A hold is renewed within a period of being taken and
 * every period after, well inside its TTL (the period is a third of it). The timer runs only while
 * there is a hold to renew, and never keeps the process alive.
 */
class Renewals {
  private readonly meters = new Set<Meter>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly periodMs: number) {}

  add(meter: Meter): void {
    this.meters.add(meter);
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const live of this.meters) live.renew();
    }, this.periodMs);
    this.timer.unref();
  }

  delete(meter: Meter): void {
    this.meters.delete(meter);
    if (this.meters.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }
}

const renewalsByPeriod = new Map<number, Renewals>();

function renewalsEvery(periodMs: number): Renewals {
  let renewals = renewalsByPeriod.get(periodMs);
  if (!renewals) renewalsByPeriod.set(periodMs, (renewals = new Renewals(periodMs)));
  return renewals;
}
