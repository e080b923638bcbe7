import type { StatusLevel } from '../server/quota/status.js';
import type { BudgetStatus, QuotaStatus } from '../server/quota/status-report.js';
import type { WindowSpec } from '../server/quota/window.js';

export type Locale = 'en' | 'zh';

export interface QuotaMarkdownOptions {
  locale?: Locale;
  /** The instant "in 3 days 4 h" counts from (epoch ms); passed in so output is deterministic. */
  now?: number;
}

/**
 * The `/quota` status as Markdown. LobeChat renders an MCP tool's result as Markdown only (no card
 * UI), and the model reads the same text, so everything a person asks about is spelled out here:
 * a progress bar, used / limit, remaining, status in words and the reset, then the other budgets.
 */
export function quotaMarkdown(status: QuotaStatus, options: QuotaMarkdownOptions = {}): string {
  const t = TEXT[options.locale ?? 'en'];
  const now = options.now ?? Date.now();
  const lines = [`### ${t.heading(escapeMarkdown(status.subject.name))}`, ''];

  const binding = bindingBudget(status);
  if (status.unit === null || status.usage === null || status.limit === null || status.percentage === null) {
    lines.push(t.noBudget);
  } else {
    const unit = status.unit;
    const amount = (value: number) => formatAmount(value, unit, t);
    lines.push(`${progressBar(status.percentage)} ${formatPercent(status.percentage)}`, '');
    // "78,500 of 100,000 tokens": the unit once, after the limit (dollars carry their sign).
    const used = unit === 'usd' ? formatUsd(status.usage) : TOKENS.format(status.usage);
    lines.push(`- **${t.used}${t.colon}** ${t.usedOf(used, amount(status.limit))}`);
    // The limit above includes grants in force: say so, and by whom, so nobody mistakes it for the budget itself.
    const granted = binding ? (unit === 'usd' ? binding.grantedUsd : binding.grantedTokens) : undefined;
    if (binding?.grants?.length && granted !== undefined && granted > 0) {
      const deciders = [...new Set(binding.grants.map((g) => t.decidedBy[g.decidedBy as keyof Text['decidedBy']] ?? g.decidedBy))];
      lines.push(`- **${t.granted}${t.colon}** ${t.includesGrant(amount(granted), deciders.join(', '))}`);
    }
    if (status.remaining !== null) {
      const reserved = binding ? (unit === 'usd' ? binding.reservedUsd : binding.reservedTokens) : 0;
      const held = reserved > 0 ? t.aside(t.held(amount(reserved))) : '';
      lines.push(`- **${t.remaining}${t.colon}** ${amount(status.remaining)}${held}`);
    }
    // A token budget still costs money: people asking "how much have I spent" want the dollars too.
    if (unit === 'tokens' && binding && binding.usedUsd > 0) lines.push(`- **${t.spent}${t.colon}** ${formatUsd(binding.usedUsd)}`);
    lines.push(`- **${t.status}${t.colon}** ${t.statusLong[status.status]}`);
    lines.push(`- **${t.resets}${t.colon}** ${resetText(status.nextReset, binding?.window, now, t)}`);
    if (binding) lines.push(`- **${t.budget}${t.colon}** ${scopeText(binding.scope)} · ${windowText(binding.window, t)}`);
  }

  const others = status.budgets.filter((b) => b !== binding);
  if (others.length > 0) {
    lines.push('', `**${binding ? t.otherBudgets : t.budgets}**`, '', ...budgetTable(others, now, t));
  }
  return lines.join('\n');
}

const BAR_CELLS = 20;

/**
 * `██████████░░░░░░░░░░ 52.3 %`-style bar. Cells are rounded down, so a full bar means the limit
 * is reached (99.9 % still shows one empty cell); past 100 % it stays full.
 */
export function progressBar(percentage: number): string {
  // Multiplied first, so a cell edge (every 5 %) is an exact integer quotient.
  const filled = Math.min(BAR_CELLS, Math.max(0, Math.floor((percentage * BAR_CELLS) / 100)));
  return '█'.repeat(filled) + '░'.repeat(BAR_CELLS - filled);
}

/**
 * Makes user-provided text (names, ids, time zones) inert in Markdown and HTML: line breaks would
 * end a table row or start a heading, `|` splits a cell, backticks and `*_~[]!` format or link,
 * `#` closes a heading, `<>&` could open raw HTML, `$` opens LaTeX in LobeChat (remark-math), and
 * `:` `@` `.` make GFM autolinks (`http://`, e-mail, `www.`). Angle brackets and ampersands become
 * entities (inert in any renderer); the rest get a CommonMark backslash escape, which renders as
 * the character itself. `-`, `+`, `(` and the like only mean something at the start of a line or
 * after `]`, and escaped text never starts a line here, so they stay readable.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ')
    .replace(/[\\`*_~[\]#!|$:@.]/g, (ch) => `\\${ch}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/**
 * The budget the top-level fields were taken from. `/quota` does not name it, so it is the one
 * whose figures match them; equal candidates would read the same, so the first one is fine.
 */
export function bindingBudget(status: QuotaStatus): BudgetStatus | undefined {
  if (status.unit === null) return undefined;
  return status.budgets.find(
    (b) =>
      b.percentage === status.percentage &&
      b.status === status.status &&
      b.resetsAt === status.nextReset &&
      (status.unit === 'usd' ? b.limitUsd : b.limitTokens) === status.limit,
  );
}

function budgetTable(budgets: readonly BudgetStatus[], now: number, t: Text): string[] {
  const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [
    row(t.columns),
    row(t.columns.map(() => '---')),
    ...budgets.map((b) =>
      row([
        scopeText(b.scope),
        windowText(b.window, t),
        usedText(b, t),
        bothUnits(b, b.limitTokens, b.limitUsd, t),
        formatPercent(b.percentage),
        t.statusShort[b.status],
        b.resetsAt === null ? resetText(null, b.window, now, t) : instantText(b.resetsAt),
      ]),
    ),
  ];
}

/** A budget's figure in each unit it limits (a budget can limit tokens and dollars at once). */
function bothUnits(b: BudgetStatus, tokens: number | null, usd: number | null, t: Text): string {
  const parts: string[] = [];
  if (b.limitTokens !== null && tokens !== null) parts.push(formatAmount(tokens, 'tokens', t));
  if (b.limitUsd !== null && usd !== null) parts.push(formatAmount(usd, 'usd', t));
  return parts.length > 0 ? parts.join(' · ') : '—';
}

/** Used in each unit, and what requests in flight hold of it, if anything. */
function usedText(b: BudgetStatus, t: Text): string {
  const parts: string[] = [];
  const part = (used: number, reserved: number, unit: 'tokens' | 'usd') =>
    formatAmount(used, unit, t) + (reserved > 0 ? t.aside(t.held(formatAmount(reserved, unit, t))) : '');
  if (b.limitTokens !== null) parts.push(part(b.usedTokens, b.reservedTokens, 'tokens'));
  if (b.limitUsd !== null) parts.push(part(b.usedUsd, b.reservedUsd, 'usd'));
  return parts.length > 0 ? parts.join(' · ') : '—';
}

function resetText(nextReset: string | null, window: WindowSpec | undefined, now: number, t: Text): string {
  if (nextReset !== null) {
    const at = Date.parse(nextReset);
    return Number.isNaN(at) ? instantText(nextReset) : `${instantText(nextReset)}${t.aside(relativeTime(at - now, t.locale))}`;
  }
  if (window?.kind === 'rolling') return t.rollingReset(window.hours);
  if (window?.kind === 'total') return t.neverReset;
  return t.noReset;
}

/** "in 3 days 4 h" / "3 天 4 小时后": the two largest units are precise enough for a reset. */
export function relativeTime(ms: number, locale: Locale = 'en'): string {
  const t = TEXT[locale];
  if (ms <= 0) return t.dueNow;
  const minutes = Math.ceil(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return t.inTime(t.days(days), hours > 0 ? t.hours(hours) : null);
  if (hours > 0) return t.inTime(t.hours(hours), mins > 0 ? t.minutes(mins) : null);
  return t.inTime(t.minutes(mins), null);
}

/**
 * Reset instants are ours (ISO 8601 with the window's offset) and are shown verbatim so people and
 * the model can read them; anything else would be escaped like user text.
 */
const instantText = (iso: string): string =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(iso) ? iso : escapeMarkdown(iso);

/** `user:alice`: the kind is ours, the id was typed by an admin and is escaped. */
function scopeText(scope: string): string {
  const match = /^(global|user|project|key)(?::(.*))?$/s.exec(scope);
  if (!match) return escapeMarkdown(scope);
  const [, kind, id] = match;
  return id === undefined ? `${kind}` : `${kind}:${escapeMarkdown(id)}`;
}

function windowText(window: WindowSpec, t: Text): string {
  switch (window.kind) {
    case 'rolling':
      return t.rolling(window.hours);
    case 'total':
      return t.total;
    default:
      return `${t.calendar[window.kind]} (${escapeMarkdown(window.timeZone)})`;
  }
}

const TOKENS = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatAmount(value: number, unit: 'tokens' | 'usd', t: Text): string {
  return unit === 'usd' ? formatUsd(value) : `${TOKENS.format(value)} ${t.tokens}`;
}

/**
 * `\$1.23`: the backslash keeps two amounts on one line from being read as LaTeX by LobeChat's
 * remark-math, and renders as a plain `$`. Cents below one show up to four decimals, not `$0.00`.
 */
function formatUsd(value: number): string {
  const small = value !== 0 && Math.abs(value) < 0.01;
  const text = value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: small ? 4 : 2 });
  return `\\$${text}`;
}

const formatPercent = (percentage: number): string => `${percentage.toFixed(1)} %`;

interface Text {
  locale: Locale;
  /** Label punctuation: "Used:" but "已用：". */
  colon: string;
  /** A parenthetical with its leading space: " (in 3 h)" but "（3 小时后）". */
  aside(text: string): string;
  heading(name: string): string;
  noBudget: string;
  used: string;
  usedOf(used: string, limit: string): string;
  remaining: string;
  held(amount: string): string;
  spent: string;
  granted: string;
  includesGrant(amount: string, by: string): string;
  decidedBy: Record<'admin' | 'link' | 'policy', string>;
  status: string;
  resets: string;
  budget: string;
  budgets: string;
  otherBudgets: string;
  columns: readonly string[];
  tokens: string;
  statusLong: Record<StatusLevel, string>;
  statusShort: Record<StatusLevel, string>;
  calendar: Record<'day' | 'week' | 'month', string>;
  rolling(hours: number): string;
  total: string;
  rollingReset(hours: number): string;
  neverReset: string;
  noReset: string;
  dueNow: string;
  inTime(first: string, second: string | null): string;
  days(n: number): string;
  hours(n: number): string;
  minutes(n: number): string;
}

const DOTS: Record<StatusLevel, string> = { normal: '🟢', warning: '🟡', critical: '🟠', exceeded: '🔴' };

const TEXT: Record<Locale, Text> = {
  en: {
    locale: 'en',
    colon: ':',
    aside: (text) => ` (${text})`,
    heading: (name) => `Quota for ${name}`,
    noBudget: 'No budget applies to you: your usage is not limited.',
    used: 'Used',
    usedOf: (used, limit) => `${used} of ${limit}`,
    remaining: 'Remaining',
    held: (amount) => `${amount} held by requests in flight`,
    spent: 'Spent',
    granted: 'Granted',
    includesGrant: (amount, by) => `the limit includes +${amount} granted by ${by}, until the window ends`,
    decidedBy: { admin: 'an admin', link: 'an approval link', policy: 'the auto-approve policy' },
    status: 'Status',
    resets: 'Resets',
    budget: 'Budget',
    budgets: 'Budgets',
    otherBudgets: 'Other budgets that apply',
    columns: ['Scope', 'Window', 'Used', 'Limit', '%', 'Status', 'Resets'],
    tokens: 'tokens',
    statusLong: {
      normal: `${DOTS.normal} Normal`,
      warning: `${DOTS.warning} Warning: running low`,
      critical: `${DOTS.critical} Critical: almost used up`,
      exceeded: `${DOTS.exceeded} Exceeded: the limit is used up`,
    },
    statusShort: {
      normal: `${DOTS.normal} normal`,
      warning: `${DOTS.warning} warning`,
      critical: `${DOTS.critical} critical`,
      exceeded: `${DOTS.exceeded} exceeded`,
    },
    calendar: { day: 'daily', week: 'weekly', month: 'monthly' },
    rolling: (hours) => `rolling ${hours} h`,
    total: 'all time',
    rollingReset: (hours) => `gradually, as usage older than ${hours} h leaves the window`,
    neverReset: 'never (an all-time budget)',
    noReset: 'no fixed reset',
    dueNow: 'due now',
    inTime: (first, second) => `in ${first}${second === null ? '' : ` ${second}`}`,
    days: (n) => `${n} ${n === 1 ? 'day' : 'days'}`,
    hours: (n) => `${n} h`,
    minutes: (n) => `${n} min`,
  },
  zh: {
    locale: 'zh',
    colon: '：',
    aside: (text) => `（${text}）`,
    heading: (name) => `${name} 的额度`,
    noBudget: '当前没有适用于你的预算，用量不受限制。',
    used: '已用',
    usedOf: (used, limit) => `${used} / ${limit}`,
    remaining: '剩余',
    held: (amount) => `另有 ${amount} 被进行中的请求占用`,
    spent: '花费',
    granted: '额外授予',
    includesGrant: (amount, by) => `上限已含${by}批准的 +${amount}，到本周期结束为止`,
    decidedBy: { admin: '管理员', link: '审批链接', policy: '自动审批策略' },
    status: '状态',
    resets: '重置',
    budget: '预算',
    budgets: '预算',
    otherBudgets: '其他适用的预算',
    columns: ['范围', '周期', '已用', '上限', '占比', '状态', '重置'],
    tokens: 'tokens',
    statusLong: {
      normal: `${DOTS.normal} 正常`,
      warning: `${DOTS.warning} 预警：余量不多`,
      critical: `${DOTS.critical} 紧张：即将用完`,
      exceeded: `${DOTS.exceeded} 已超额：额度已用完`,
    },
    statusShort: {
      normal: `${DOTS.normal} 正常`,
      warning: `${DOTS.warning} 预警`,
      critical: `${DOTS.critical} 紧张`,
      exceeded: `${DOTS.exceeded} 已超额`,
    },
    calendar: { day: '每日', week: '每周', month: '每月' },
    rolling: (hours) => `滚动 ${hours} 小时`,
    total: '累计',
    rollingReset: (hours) => `逐步释放：超过 ${hours} 小时的用量移出窗口`,
    neverReset: '不重置（累计预算）',
    noReset: '无固定重置时间',
    dueNow: '即将重置',
    inTime: (first, second) => `${first}${second === null ? '' : ` ${second}`}后`,
    days: (n) => `${n} 天`,
    hours: (n) => `${n} 小时`,
    minutes: (n) => `${n} 分钟`,
  },
};
