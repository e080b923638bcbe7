import { terminalText } from './terminal-text.js';

/** A budget as the admin API shows it (`budgetView`). */
export interface BudgetJson {
  id: string;
  scope: string;
  window: { kind: string; timeZone?: string; hours?: number };
  limitTokens: number | null;
  limitUsd: number | null;
  onLimit: string;
  downgradeTo: string | null;
  /** Absent from older servers' answers. */
  models?: string[] | null;
  fallback?: Array<{ at: number; to: string }>;
}

/** `PUT /admin/budgets`' answer: the budget, and the one it replaced. */
export interface PutBudgetJson extends BudgetJson {
  replaced: BudgetJson | null;
}

const TOKENS = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const USD = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 6 });

/** The window's period as budgets are keyed by it: `month`, `rolling:5h`, `total`. */
const period = (w: BudgetJson['window']): string => (w.kind === 'rolling' ? `rolling:${w.hours}h` : w.kind);

/** `100,000 tokens/month (UTC)`, `$20.00/day (Asia/Shanghai)`, `20,000 tokens per rolling 5 h`, `$50.00 in total`. */
export function limitText(b: BudgetJson): string {
  const amounts: string[] = [];
  if (b.limitTokens !== null) amounts.push(`${TOKENS.format(b.limitTokens)} tokens`);
  if (b.limitUsd !== null) amounts.push(`$${USD.format(b.limitUsd)}`);
  const w = b.window;
  const per = w.kind === 'rolling' ? ` per rolling ${w.hours} h` : w.kind === 'total' ? ' in total' : `/${w.kind} (${terminalText(w.timeZone ?? 'UTC')})`;
  const atLimit = b.onLimit === 'downgrade' ? `, then ${terminalText(b.downgradeTo ?? '?')}` : b.onLimit === 'alert-only' ? ', alert only' : '';
  const models = b.models ? ` of ${terminalText(b.models.join(', '))}` : '';
  const rules = b.fallback?.length ? `, ${b.fallback.map((r) => `at ${r.at} % to ${terminalText(r.to)}`).join(', ')}` : '';
  return `${amounts.join(' + ')}${models}${per}${atLimit}${rules}`;
}

/**
 * What `budgets set` did, in one line: `created user:alice month: 100,000 tokens/month (UTC)`, or
 * `replaced user:alice month: was 100,000 tokens/month (UTC), now $20.00/month (Asia/Shanghai)`,
 * so an admin sees when a budget of another unit or zone was there before.
 */
export function budgetSetText(b: PutBudgetJson): string {
  const which = `${terminalText(b.scope)} ${period(b.window)}${b.models ? ` models=${terminalText(b.models.join(','))}` : ''}`;
  const id = `(budget ${terminalText(b.id)})`;
  if (b.replaced === null) return `created ${which}: ${limitText(b)} ${id}\n`;
  return `replaced ${which}: was ${limitText(b.replaced)}, now ${limitText(b)} ${id}\n`;
}
