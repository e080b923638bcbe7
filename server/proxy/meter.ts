import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics/metrics.js';
import { costMicros } from '../quota/admission.js';
import type { RequestSubject } from '../quota/scope.js';
import type { BudgetState, Hold, Outcome, SettleResult, Store, UsageSource } from '../store/types.js';
import { usageCostMicros, type ModelPrice } from './pricing.js';

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
  promptTokens: number;
  price: ModelPrice | null;
  /** The most output the request may produce: its max_tokens, or the model's output cap. */
  wantOutput: number;
  /** Streams hold a lease that grows; other requests hold their whole allowance up front. */
  streaming: boolean;
  /** The least output worth starting the request for (default 1; an API may demand more). */
  minOutput?: number;
  /** Set for a downgraded request: `downgrade` budgets admit it up to their limit × this. */
  downgradeCeiling?: number;
  sessionId: string | null;
  tags: Record<string, string>;
}

/** What the upstream reported, when it did. */
export interface UpstreamUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

export type Admitted =
  | {
      ok: true;
      meter: Meter;
      /** The output limit to forward upstream, so the model itself stops at the budget. */
      outputLimit: number;
      budgets: BudgetState[];
    }
  | { ok: false; blocking: BudgetState; budgets: BudgetState[] };

/**
 * One request's way through the budgets: admitted with a hold, its output counted as it arrives
 * (a stream's lease growing as needed), and then settled or released — exactly once.
 */
export class Meter {
  private counted = 0;
  private allowance: number;
  private finished = false;
  private readonly startedAt: number;
  /** Renews the hold while the request runs, so only a request that died lets it expire. */
  private readonly renewal: NodeJS.Timeout;

  private constructor(
    private readonly services: MeterServices,
    private readonly request: MeterRequest,
    hold: Hold,
  ) {
    this.allowance = hold.outputTokens;
    this.startedAt = services.clock.now();
    this.renewal = setInterval(() => {
      void services.store.renew(request.holdId, services.clock.now(), services.holdTtlMs).catch(() => undefined);
    }, Math.max(1_000, Math.floor(services.holdTtlMs / 3)));
    this.renewal.unref();
  }

  static async admit(services: MeterServices, request: MeterRequest): Promise<Admitted> {
    const inputPrice = request.price?.inputMicrosPerMillion ?? 0;
    const outputPrice = request.price?.outputMicrosPerMillion ?? 0;
    // Prompt plus one output token must fit (DESIGN); embeddings produce no output at all.
    const want = Math.max(0, request.wantOutput);
    const result = await services.store.reserve({
      holdId: request.holdId,
      subject: request.subject,
      quote: {
        tokens: request.promptTokens,
        micros: costMicros(request.promptTokens, inputPrice),
        output: {
          wantTokens: request.streaming ? Math.min(want, services.leaseTokens) : want,
          minTokens: Math.min(want, request.minOutput ?? 1),
          microsPerMillion: outputPrice,
        },
        ...(request.downgradeCeiling === undefined ? {} : { downgradeCeiling: request.downgradeCeiling }),
      },
      now: services.clock.now(),
      ttlMs: services.holdTtlMs,
      // Kept with the hold, so that if this process dies mid-request the request is still charged.
      pending: {
        model: request.model,
        inputTokens: request.promptTokens,
        price: request.price,
        sessionId: request.sessionId,
        tags: request.tags,
      },
    });
    if (!result.ok) return result;
    return {
      ok: true,
      meter: new Meter(services, request, result.hold),
      outputLimit: Math.min(want, result.outputRoom),
      budgets: result.budgets,
    };
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
      const delivered = this.counted + tokens;
      const grown = (await this.grow(Math.max(needed, this.services.leaseTokens), delivered)) || (await this.grow(needed, delivered));
      if (!grown) return false;
    }
    this.counted += tokens;
    return true;
  }

  /** `deliveredTokens`: the output count once the piece that needs the room has gone out. */
  private async grow(tokens: number, deliveredTokens: number): Promise<boolean> {
    const price = this.request.price?.outputMicrosPerMillion ?? 0;
    const now = this.services.clock.now();
    const result = await this.services.store.extend(this.request.holdId, { tokens, micros: costMicros(tokens, price) }, now, this.services.holdTtlMs, deliveredTokens);
    if (result.ok) this.allowance += tokens;
    return result.ok;
  }

  /**
   * Records the request in the ledger: the upstream's numbers when it reported them, else ours
   * (the prompt as counted at admission and the output counted so far).
   */
  async settle(upstream: UpstreamUsage | null, outcome: Outcome): Promise<SettleResult | null> {
    if (this.finished) return null;
    this.finished = true;
    clearInterval(this.renewal);
    const source: UsageSource = upstream ? 'upstream' : 'estimated';
    const usage = upstream ?? { inputTokens: this.request.promptTokens, outputTokens: this.counted, cachedTokens: 0, reasoningTokens: 0 };
    const now = this.services.clock.now();
    let settled: SettleResult;
    try {
      settled = await this.services.store.settle({
        holdId: this.request.holdId,
        subject: this.request.subject,
        now,
        usage: {
          model: this.request.model,
          ...usage,
          costMicros: this.request.price ? usageCostMicros(this.request.price, usage) : 0,
          source,
          outcome,
          latencyMs: Math.max(0, now - this.startedAt),
          sessionId: this.request.sessionId,
          tags: this.request.tags,
        },
      });
    } catch (error) {
      // The ledger refused it: do not leave the hold behind.
      await this.services.store.release(this.request.holdId);
      throw error;
    }
    // Our own output count is only worth comparing when we counted as it went (streams).
    const estimate = { promptTokens: this.request.promptTokens, outputTokens: this.request.streaming ? this.counted : null };
    if (!settled.duplicate) this.services.metrics.recordSettled(settled.entry, estimate);
    return settled;
  }

  /** Gives the hold back without charging: the upstream failed, timed out or broke off. */
  async release(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.renewal);
    this.services.metrics.recordOutcome(this.request.model, 'upstream_error');
    await this.services.store.release(this.request.holdId);
  }
}
