import { format } from 'node:util';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import { familyOf, type ModelFamily } from '../proxy/model-family.js';
import type { PriceBook } from '../proxy/pricing.js';
import { formatScope, type Scope } from '../quota/scope.js';
import { budgetPeriod } from '../quota/budgets.js';
import type { BudgetState, LedgerEntry, Store } from '../store/types.js';
import { registerAlertOutboxGauges } from './alert-outbox-gauges.js';
import { MAX_MODEL_LABELS, ModelLabels } from './model-labels.js';

/** How a proxied request ended, as counted by `lobe_quota_requests_total`. */
export type RequestOutcome = 'ok' | 'refused' | 'cut_off' | 'upstream_error' | 'client_abort' | 'rate_limited' | 'interrupted';

/** What the Meter knew before the upstream reported its own usage (see `Meter.settle`). */
export interface EstimateCheck {
  promptTokens: number;
  /** Output the proxy counted itself, or null when it did not count it (a whole answer with usage). */
  outputTokens: number | null;
}

const MICROS_PER_USD = 1_000_000;

/**
 * A counter child's increments, added up here and handed to prom-client when the metric is read
 * (its collect: every read of the registry goes through it). prom-client builds and validates a
 * label hash on every `inc`, which the proxy would pay seven times a request; a scrape pays it
 * once per child instead. Increments are refused here as prom-client refuses them, with its errors.
 */
class Tally {
  private pending = 0;

  constructor(private readonly child: Counter.Internal) {}

  add(value: number): void {
    if (value && !Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${format(value)}`);
    if (value < 0) throw new Error('It is not possible to decrease a counter');
    this.pending += value;
  }

  /** Into prom-client: a child only added 0 to is still created, at 0, as `inc(0)` creates it. */
  flush(): void {
    this.child.inc(this.pending);
    this.pending = 0;
  }
}

/** One model label's counters (see Metrics.modelCounters). */
interface ModelCounters {
  outcomes: Map<RequestOutcome, Tally>;
  input: Tally;
  output: Tally;
  cached: Tally;
  cacheWrite: Tally;
  reasoning: Tally;
  cost: Tally;
}

/** One family's children of the estimate-ratio histogram (see Metrics.estimateRatiosOf). */
interface EstimateRatios {
  prompt: Histogram.Internal<'family' | 'kind'>;
  output: Histogram.Internal<'family' | 'kind'>;
}

/** Every budget's state at one instant (reset seconds are counted from the same instant). */
interface BudgetRead {
  states: BudgetState[];
  now: number;
}

/**
 * The Prometheus side of lobe-quota. Each app has its own registry (never prom-client's global
 * one), so tests and several apps in one process do not count into each other. Counters are fed by
 * the proxy; budget gauges are read from the store when Prometheus scrapes.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'model' | 'outcome'>;
  private readonly tokens: Counter<'model' | 'kind'>;
  private readonly cost: Counter<'model'>;
  private readonly addedLatency: Histogram;
  private readonly inputEstimateDiff: Histogram;
  private readonly outputEstimateDiff: Histogram;
  private readonly estimateRatio: Histogram<'family' | 'kind'>;
  private readonly cacheLookups: Counter<'result'>;
  private readonly cacheHits: Counter.Internal;
  private readonly cacheMisses: Counter.Internal;
  private readonly cacheSavedTokens: Counter;
  private readonly cacheSavedCost: Counter;
  private readonly routed: Counter<'from' | 'to'>;
  private readonly failovers: Counter<'upstream'>;
  /** Each family's children of the estimate-ratio histogram, looked up once (nine families at most). */
  private readonly estimateRatios = new Map<ModelFamily, EstimateRatios>();
  /**
   * The labelled children each model label's requests count into, looked up once per label:
   * prom-client hashes a label object on every `inc`, which the proxy would otherwise pay six times
   * a request. Bounded, as the labels are (see ModelLabels).
   */
  private readonly modelCounters = new Map<string, ModelCounters>();
  /** Every Tally of modelCounters, flushed when any of their metrics is read. */
  private readonly tallies: Tally[] = [];
  private readonly modelLabels: ModelLabels;
  /** One store read per scrape, shared by the budget gauges' collect callbacks. */
  private budgetRead: Promise<BudgetRead> | null = null;

  constructor(private readonly services: { store: Store; clock: Clock; prices: Pick<PriceBook, 'priceOf'> }) {
    const registers = [this.registry];
    this.modelLabels = new ModelLabels((model) => services.prices.priceOf(model) !== null);
    this.requests = new Counter({
      name: 'lobe_quota_requests_total',
      help: `Metered proxy requests by the model asked upstream (model="other": one without a price that no upstream has served, or past the first ${MAX_MODEL_LABELS} models) and how they ended: ok, refused (a budget), rate_limited, cut_off (a budget ran out mid-stream), upstream_error (nothing charged), client_abort (charged for what was sent).`,
      labelNames: ['model', 'outcome'],
      registers,
      collect: () => this.flushTallies(),
    });
    this.tokens = new Counter({
      name: 'lobe_quota_tokens_total',
      help: 'Tokens charged to the ledger by model and kind. cached (cache reads) and cache_write (cache writes, Anthropic’s) are parts of input, reasoning part of output.',
      labelNames: ['model', 'kind'],
      registers,
      collect: () => this.flushTallies(),
    });
    this.cost = new Counter({
      name: 'lobe_quota_cost_usd_total',
      help: 'US dollars charged to the ledger by model (at the configured prices).',
      labelNames: ['model'],
      registers,
      collect: () => this.flushTallies(),
    });
    this.addedLatency = new Histogram({
      name: 'lobe_quota_proxy_added_latency_seconds',
      help: "The proxy's own latency before a request goes upstream: reading the body, counting the prompt, rate limits and budget admission.",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    // Two unlabelled histograms rather than one with a `part` label: the two differences answer
    // different questions (are admission holds right? are stream cut-offs right?) and are never summed.
    const diffBuckets = [-1000, -100, -20, -5, -1, 0, 1, 5, 20, 100, 1000];
    this.inputEstimateDiff = new Histogram({
      name: 'lobe_quota_estimate_input_token_diff',
      help: "Per request settled on the upstream's usage: upstream prompt tokens minus lobe-quota's count at admission. Positive: the proxy held too little for the prompt.",
      buckets: diffBuckets,
      registers,
    });
    this.outputEstimateDiff = new Histogram({
      name: 'lobe_quota_estimate_output_token_diff',
      help: "Per stream settled on the upstream's usage: upstream output tokens minus what lobe-quota counted while relaying it (whole answers are not counted when usage comes back). Positive: the proxy under-counted, so a budget could run over before a cut-off.",
      buckets: diffBuckets,
      registers,
    });
    // The ratio by the model's tokenizer family (model-family.ts): openai is counted exactly, the
    // others are estimates, each with factors of its own. Unlike the differences above (unlabelled,
    // as dashboards read them), a ratio does not grow with the request: it is what a family's
    // factors are checked against. Below 1 the estimate was low (a budget could be overrun by that
    // share of the request); well above it, admission holds more than it needs.
    this.estimateRatio = new Histogram({
      name: 'lobe_quota_estimate_ratio',
      help: "Per request settled on the upstream's usage: lobe-quota's count divided by the upstream's, by the model's tokenizer family (openai is counted exactly, the others are estimates meant to err high) and kind (prompt: at admission; output: counted while a stream was relayed). Below 1: the count was low.",
      labelNames: ['family', 'kind'],
      buckets: [0.5, 0.75, 0.9, 0.95, 1, 1.05, 1.1, 1.25, 1.5, 2, 3, 5],
      registers,
    });
    this.cacheLookups = new Counter({
      name: 'lobe_quota_response_cache_lookups_total',
      help: 'Requests looked up in the response cache (cache enabled, eligible, not X-Quota-Cache: off), by result: hit (answered from the cache, never sent upstream) or miss.',
      labelNames: ['result'],
      registers,
    });
    this.routed = new Counter({
      name: 'lobe_quota_routed_total',
      help: 'Requests a budget\'s fallback rule (or downgrade) sent to another model than the one asked for, by the model asked for and the model that served it.',
      labelNames: ['from', 'to'],
      registers,
    });
    this.failovers = new Counter({
      name: 'lobe_quota_upstream_failovers_total',
      help: 'Tries an upstream failed before its answer began (429, 5xx, no connection or headers in time), after which the request went to the next upstream.',
      labelNames: ['upstream'],
      registers,
    });
    this.cacheHits = this.cacheLookups.labels({ result: 'hit' });
    this.cacheMisses = this.cacheLookups.labels({ result: 'miss' });
    this.cacheSavedTokens = new Counter({
      name: 'lobe_quota_response_cache_saved_tokens_total',
      help: 'Tokens the response cache saved: the first answers\' tokens minus what their hits were charged (cache.chargeFraction).',
      registers,
    });
    this.cacheSavedCost = new Counter({
      name: 'lobe_quota_response_cache_saved_usd_total',
      help: 'US dollars the response cache saved (at the prices the first answers were charged).',
      registers,
    });
    this.budgetGauges();
    registerAlertOutboxGauges(this.registry, services);
  }

  /** A request looked up in the response cache and not found. */
  recordCacheMiss(): void {
    this.cacheMisses.inc();
  }

  /** A request answered from the response cache, and what it saved (its ledger entry is counted by recordSettled). */
  recordRouted(from: string, to: string): void {
    this.routed.inc({ from: this.modelLabels.of(from), to: this.modelLabels.of(to) });
  }

  recordFailover(upstream: string): void {
    this.failovers.inc({ upstream });
  }

  recordCacheHit(saved: { tokens: number; micros: number }): void {
    this.cacheHits.inc();
    this.cacheSavedTokens.inc(saved.tokens);
    this.cacheSavedCost.inc(saved.micros / MICROS_PER_USD);
  }

  private tally(child: Counter.Internal): Tally {
    const tally = new Tally(child);
    this.tallies.push(tally);
    return tally;
  }

  private flushTallies(): void {
    for (const tally of this.tallies) tally.flush();
  }

  private countersOf(model: string): ModelCounters {
    let counters = this.modelCounters.get(model);
    if (!counters) {
      // `model` is a label from ModelLabels, never a client's name as sent.
      counters = {
        outcomes: new Map(),
        input: this.tally(this.tokens.labels({ model, kind: 'input' })),
        output: this.tally(this.tokens.labels({ model, kind: 'output' })),
        cached: this.tally(this.tokens.labels({ model, kind: 'cached' })),
        cacheWrite: this.tally(this.tokens.labels({ model, kind: 'cache_write' })),
        reasoning: this.tally(this.tokens.labels({ model, kind: 'reasoning' })),
        cost: this.tally(this.cost.labels({ model })),
      };
      this.modelCounters.set(model, counters);
    }
    return counters;
  }

  private countOutcome(model: string, outcome: RequestOutcome): void {
    const { outcomes } = this.countersOf(model);
    let counter = outcomes.get(outcome);
    if (!counter) {
      counter = this.tally(this.requests.labels({ model, outcome }));
      outcomes.set(outcome, counter);
    }
    counter.add(1);
  }

  /** A request that ended without a ledger entry (a refusal or an upstream error). */
  recordOutcome(model: string, outcome: RequestOutcome): void {
    this.countOutcome(this.modelLabels.of(model), outcome);
  }

  /** A settled request: its outcome, the tokens and cost the ledger charged, and how far off our count was. */
  recordSettled(entry: LedgerEntry, estimate: EstimateCheck): void {
    const model = this.modelLabels.ofSettled(entry);
    this.countOutcome(model, entry.outcome);
    const counters = this.countersOf(model);
    counters.input.add(entry.inputTokens);
    counters.output.add(entry.outputTokens);
    counters.cached.add(entry.cachedTokens);
    counters.cacheWrite.add(entry.cacheWriteTokens ?? 0);
    counters.reasoning.add(entry.reasoningTokens);
    counters.cost.add(entry.costMicros / MICROS_PER_USD);
    if (entry.source === 'upstream') this.compareEstimate(entry, estimate);
  }

  /** How far our counts were from the upstream's, for a request it reported usage for. */
  private compareEstimate(entry: LedgerEntry, estimate: EstimateCheck): void {
    const ratios = this.estimateRatiosOf(familyOf(entry.model));
    this.inputEstimateDiff.observe(entry.inputTokens - estimate.promptTokens);
    if (entry.inputTokens > 0) ratios.prompt.observe(estimate.promptTokens / entry.inputTokens);
    if (estimate.outputTokens === null) return;
    this.outputEstimateDiff.observe(entry.outputTokens - estimate.outputTokens);
    if (entry.outputTokens > 0) ratios.output.observe(estimate.outputTokens / entry.outputTokens);
  }

  private estimateRatiosOf(family: ModelFamily): EstimateRatios {
    let ratios = this.estimateRatios.get(family);
    if (!ratios) {
      ratios = { prompt: this.estimateRatio.labels({ family, kind: 'prompt' }), output: this.estimateRatio.labels({ family, kind: 'output' }) };
      this.estimateRatios.set(family, ratios);
    }
    return ratios;
  }

  /** Observes the time since `startedAt` (a `performance.now()` reading) as the proxy's added latency. */
  observeAddedLatency(startedAt: number): void {
    this.addedLatency.observe(Math.max(0, performance.now() - startedAt) / 1000);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /**
   * Gauges computed at scrape time from the store. prom-client starts every metric's collect at
   * once, so the first one reads the store and the others share that read.
   */
  private budgetGauges(): void {
    const metrics = this; // collect() is called with the gauge as `this`
    for (const [name, spec] of Object.entries(BUDGET_GAUGES)) {
      new Gauge({
        name: `lobe_quota_budget_${name}`,
        help: spec.help,
        labelNames: spec.labelNames,
        registers: [this.registry],
        async collect() {
          const { states, now } = await metrics.sharedBudgetRead();
          this.reset();
          for (const state of states) for (const [labels, value] of spec.samples(state, now)) this.set(labels, value);
        },
      });
    }
  }

  private sharedBudgetRead(): Promise<BudgetRead> {
    if (this.budgetRead === null) {
      const now = this.services.clock.now();
      this.budgetRead = readBudgets(this.services.store, now).then((states) => ({ states, now })).finally(() => {
        this.budgetRead = null;
      });
    }
    return this.budgetRead;
  }
}

/**
 * Every budget once: the global scope's, each project's, user's and active key's own. A subject's
 * own scope is enough (its project's and the global budgets are read for those), and budgets are
 * deduplicated by key in case a scope shows up twice.
 */
async function readBudgets(store: Store, now: number): Promise<BudgetState[]> {
  const [projects, users, keys] = await Promise.all([store.listProjects(), store.listUsers(), store.listKeys()]);
  const scopes: Scope[] = [
    { kind: 'global' },
    ...projects.map((p): Scope => ({ kind: 'project', id: p.id })),
    ...users.map((u): Scope => ({ kind: 'user', id: u.id })),
    ...keys.filter((k) => k.revokedAt === null).map((k): Scope => ({ kind: 'key', id: k.id })),
    // Provider accounts with budgets of their own (scope upstream:NAME).
    ...[...new Set((await store.listBudgets()).flatMap((b) => (b.scope.kind === 'upstream' ? [b.scope.id] : [])))].map((id): Scope => ({ kind: 'upstream', id })),
  ];
  const byKey = new Map<string, BudgetState>();
  for (const scope of scopes) {
    for (const state of await store.budgetStates([scope], now)) byKey.set(state.budget.key, state);
  }
  return [...byKey.values()];
}

type Sample = [labels: Record<string, string>, value: number];

/** A budget's sample per unit it limits: a token budget's dollar usage is no budget, so it is left out. */
function perUnit(state: BudgetState, value: (unit: { limit: number; used: number; reserved: number }) => number): Sample[] {
  const { budget, usage } = state;
  const base = { scope: formatScope(budget.scope), period: budgetPeriod(budget.window, budget.models ?? null) };
  const samples: Sample[] = [];
  if (budget.limitTokens !== null) {
    samples.push([{ ...base, unit: 'tokens' }, value({ limit: budget.limitTokens, used: usage.usedTokens, reserved: usage.reservedTokens })]);
  }
  if (budget.limitMicros !== null) {
    const usd = (micros: number) => micros / MICROS_PER_USD;
    samples.push([{ ...base, unit: 'usd' }, value({ limit: usd(budget.limitMicros), used: usd(usage.usedMicros), reserved: usd(usage.reservedMicros) })]);
  }
  return samples;
}

const BUDGET_LABELS = ['scope', 'period', 'unit'];

const BUDGET_GAUGES: Record<string, { help: string; labelNames: string[]; samples: (state: BudgetState, now: number) => Sample[] }> = {
  used: {
    help: 'Usage charged to the budget in its current window, in its unit (tokens, or US dollars for unit="usd").',
    labelNames: BUDGET_LABELS,
    samples: (state) => perUnit(state, (u) => u.used),
  },
  limit: {
    help: "The budget's limit in its unit.",
    labelNames: BUDGET_LABELS,
    samples: (state) => perUnit(state, (u) => u.limit),
  },
  ratio: {
    help: 'Used divided by limit (1 = exhausted); what requests in flight hold is not included.',
    labelNames: BUDGET_LABELS,
    samples: (state) => perUnit(state, (u) => (u.limit > 0 ? u.used / u.limit : u.used > 0 ? Infinity : 0)),
  },
  reserved: {
    help: 'Held by requests in flight and not yet settled, in the budget\'s unit.',
    labelNames: BUDGET_LABELS,
    samples: (state) => perUnit(state, (u) => u.reserved),
  },
  reset_seconds: {
    help: 'Seconds until the usage next goes down; absent for budgets that never reset.',
    labelNames: ['scope', 'period'],
    samples: ({ budget, resetsAt }, now) =>
      resetsAt === null ? [] : [[{ scope: formatScope(budget.scope), period: budgetPeriod(budget.window, budget.models ?? null) }, Math.max(0, (resetsAt - now) / 1000)]],
  },
};
