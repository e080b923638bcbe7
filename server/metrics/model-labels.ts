import type { LedgerEntry } from '../store/types.js';

/** The `model` label of every request whose model has no label of its own. */
export const OTHER_MODEL_LABEL = 'other';

/** Distinct model labels at most: each one is about a dozen series in every scrape. */
export const MAX_MODEL_LABELS = 200;

/** Longer ids are no model anyone prices or serves; they fold into `other` like unknown ones. */
export const MAX_MODEL_LABEL_CHARS = 200;

/**
 * Decides the `model` label of a request. The model name comes from the client, so labelling
 * every name as sent lets anyone grow `/metrics` without bound (each refused request with a new
 * name was a new series). A model gets its own label only when it is known — it has a price, or
 * an upstream really served it — and only while fewer than `maxLabels` models have one; the rest
 * count under `other`. A model keeps its label once given, so its series never move.
 */
export class ModelLabels {
  private readonly labelled = new Set<string>();

  constructor(
    private readonly isPriced: (model: string) => boolean,
    private readonly maxLabels = MAX_MODEL_LABELS,
  ) {}

  /** The label of a request that ended without a ledger entry (refused, rate limited, failed). */
  of(model: string): string {
    return this.labelIf(model, () => this.isPriced(model));
  }

  /** The label of a settled request; one the upstream served makes its model known. */
  ofSettled(entry: Pick<LedgerEntry, 'model' | 'source' | 'outputTokens'>): string {
    return this.labelIf(entry.model, () => servedByUpstream(entry) || this.isPriced(entry.model));
  }

  private labelIf(model: string, known: () => boolean): string {
    if (this.labelled.has(model)) return model;
    if (model.length > MAX_MODEL_LABEL_CHARS || this.labelled.size >= this.maxLabels || !known()) return OTHER_MODEL_LABEL;
    this.labelled.add(model);
    return model;
  }
}

/**
 * The upstream reported usage for it, or delivered output. A request settled on our own count of a
 * prompt alone (a client that left before any output) proves nothing about the model: the upstream
 * may have been about to reject it.
 */
const servedByUpstream = (entry: Pick<LedgerEntry, 'source' | 'outputTokens'>): boolean => entry.source === 'upstream' || entry.outputTokens > 0;
