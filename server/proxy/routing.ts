import { coversModel, routingRules, type FallbackRule } from '../quota/budgets.js';
import { percentageOf } from '../quota/status.js';
import type { BudgetState } from '../store/types.js';
import { runSteps, type MaybePromise, type Steps } from '../util/maybe-sync.js';

/**
 * The routing step: which model, on which upstream, serves a request. A request goes to the model
 * it asked for unless a budget that covers that model has a fallback rule at or below its
 * percentage (or, at its limit, any rule up to 100): then to the rule's model, whose own budgets
 * and rules are looked at the same way. Each model is tried on its upstreams in the configured
 * order; one whose own budget (scope `upstream:NAME`) cannot take the request passes it to the
 * next. Every attempt is an atomic admission, so however the route is chosen, no budget passes its
 * limit; the choice itself reads the states that admission answered with.
 */

/** One admission tried on a model and upstream. `budgets`: the states it read, before its own hold. */
export type Tried<T> =
  | { ok: true; value: T; budgets: readonly BudgetState[]; release: () => Promise<unknown> }
  /** `blocking`: the budget that refused it; null when something else did (a rate limit). */
  | { ok: false; value: T; blocking: BudgetState | null };

export interface RoutePlan<T> {
  /** The last attempt: admitted, or the refusal to answer with. */
  tried: Tried<T>;
  /** The model it was made for. */
  model: string;
  /** The model the client asked for when a rule sent the request elsewhere; else null. */
  routedFrom: string | null;
  /** The upstreams of `model` after the one admitted, in order: where the request fails over to. */
  rest: string[];
}

export interface Router<T> {
  /** The upstreams that serve `model` in the request's format, in priority order. */
  upstreamsOf(model: string): string[];
  /**
   * Admits the request for `model` on `upstream`; `routed` when a rule sent it there; `failover`
   * when another upstream of the model follows (its budget then refuses rather than shrinks it).
   */
  tryOn(model: string, upstream: string, routed: boolean, failover: boolean): MaybePromise<Tried<T>>;
  /** Whether a rule may send this request to another model (an API that names no model may not). */
  routable: boolean;
  /** Whether `model` costs nothing (a dollar budget's level then routes nothing). */
  free?: (model: string) => boolean;
  /** Bounds a chain of rules (a → b → c …); each model is visited once anyway. */
  maxHops?: number;
}

/** How full a budget is, of the unit nearest to its limit (used plus held), in percent. */
export function fullness({ budget, usage }: Pick<BudgetState, 'budget' | 'usage'>): number {
  const tokens = budget.limitTokens === null ? 0 : percentageOf(usage.usedTokens + usage.reservedTokens, budget.limitTokens);
  const micros = budget.limitMicros === null ? 0 : percentageOf(usage.usedMicros + usage.reservedMicros, budget.limitMicros);
  return Math.max(tokens, micros);
}

/** The rule of a budget that applies at `percent`: the last one at or below it. */
export function ruleAt(rules: readonly FallbackRule[], percent: number): FallbackRule | null {
  let found: FallbackRule | null = null;
  for (const rule of rules) if (rule.at <= percent) found = rule;
  return found;
}

/** A rule that applies: the model it sends the request to, and the budget whose rule it is. */
interface Fallback {
  to: string;
  budgetKey: string;
}

/**
 * Where an admitted request for `model` goes instead: the rule of the first budget (narrowest scope
 * first) that covers `model` and is at or past one of its rules' percentage. Null: it stays. For a
 * free model only token limits count: a dollar budget's level does not move a request that costs
 * nothing.
 */
export function fallbackFor(budgets: readonly BudgetState[], model: string, allowed: (rule: Fallback) => boolean, free = false): Fallback | null {
  for (const state of budgets) {
    if (!coversModel(state.budget, model)) continue;
    const level = free ? fullness({ ...state, budget: { ...state.budget, limitMicros: null } }) : fullness(state);
    const rule = ruleAt(routingRules(state.budget), level);
    const fallback = rule && { to: rule.to, budgetKey: state.budget.key };
    if (fallback && allowed(fallback)) return fallback;
  }
  return null;
}

/** Where a request refused by `blocking` goes: its budget's rule at its limit (100 %, or past it). */
export function fallbackAtLimit(blocking: BudgetState, allowed: (rule: Fallback) => boolean): Fallback | null {
  const rule = ruleAt(routingRules(blocking.budget), Math.max(100, fullness(blocking)));
  const fallback = rule && { to: rule.to, budgetKey: blocking.budget.key };
  return fallback && allowed(fallback) ? fallback : null;
}

/** Where a request was admitted before a rule at a percentage sent it on. */
interface Admissible {
  model: string;
  upstream: string;
  routedFrom: string | null;
  rest: string[];
}

/**
 * Runs the routing step (see the module comment). Throws only what `tryOn` throws. A request that a
 * rule at a percentage sends on had room on its model: that admission is released at once (so it
 * takes no room from the next model's), and should every model after it refuse the request, or fail
 * to be tried, it is admitted there again and served there rather than refused.
 *
 * The plan is a value, not a promise, when every `tryOn` answered with one (see runSteps).
 */
export function routeRequest<T>(asked: string, router: Router<T>): MaybePromise<RoutePlan<T>> {
  return runSteps(routeSteps(asked, router));
}

function* routeSteps<T>(asked: string, router: Router<T>): Steps<RoutePlan<T>> {
  const visited = new Set<string>();
  // A budget's rules route a request once: the model its rule chose is then counted against it up
  // to its ceiling (its lower rules do not send the request on again).
  const routedBy = new Set<string>();
  // A rule's model must exist in the request's format, and not send the request round in a circle.
  const allowed = ({ to, budgetKey }: Fallback) => router.routable && !routedBy.has(budgetKey) && !visited.has(to) && router.upstreamsOf(to).length > 0;
  let admissible: Admissible | null = null;
  function* backTo(where: Admissible): Steps<RoutePlan<T>> {
    return {
      tried: (yield router.tryOn(where.model, where.upstream, where.routedFrom !== null, where.rest.length > 0)) as Tried<T>,
      model: where.model,
      routedFrom: where.routedFrom,
      rest: where.rest,
    };
  }
  let model = asked;
  let last: RoutePlan<T> | null = null;
  // Whether `last` was admitted and then released for a rule's model (it is not to be served then).
  let lastReleased = false;
  try {
    for (let hop = 0; hop <= (router.maxHops ?? 4); hop++) {
      visited.add(model);
      const routedFrom = model === asked ? null : asked;
      const upstreams = router.upstreamsOf(model);
      let next: Fallback | null = null;
      for (let i = 0; i < upstreams.length; i++) {
        const upstream = upstreams[i] as string;
        const tried = (yield router.tryOn(model, upstream, routedFrom !== null, i + 1 < upstreams.length)) as Tried<T>;
        last = { tried, model, routedFrom, rest: upstreams.slice(i + 1) };
        lastReleased = false;
        if (tried.ok) {
          next = fallbackFor(tried.budgets, model, allowed, router.free?.(model) ?? false);
          if (next === null) return last;
          // At or past a rule's percentage: another model is to serve it, if that one can.
          yield tried.release();
          lastReleased = true;
          admissible ??= { model, upstream, routedFrom, rest: last.rest };
          break;
        }
        if (tried.blocking === null) break;
        // The upstream's own budget cannot take it: the model's next upstream may.
        if (tried.blocking.budget.scope.kind === 'upstream' && i + 1 < upstreams.length) continue;
        next = fallbackAtLimit(tried.blocking, allowed);
        break;
      }
      if (next === null) break;
      routedBy.add(next.budgetKey);
      model = next.to;
    }
  } catch (error) {
    if (admissible === null) throw error;
    return yield* backTo(admissible);
  }
  if (last === null) throw new Error(`no upstream serves ${asked}`);
  if (admissible !== null && (!last.tried.ok || lastReleased)) return yield* backTo(admissible);
  return last;
}
