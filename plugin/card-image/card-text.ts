import type { StatusLevel, Unit } from '../../server/quota/status.js';
import type { BudgetStatus, SubjectRef } from '../../server/quota/status-report.js';
import type { WindowSpec } from '../../server/quota/window.js';
import type { Locale } from '../quota-markdown.js';

/**
 * The words and numbers on the card image, in the web card's own wording (public/card.js), so the
 * image LobeHub 2.x shows over MCP reads like the card LobeChat 1.x shows in its iframe.
 */
export interface CardText {
  /** The BCP 47 tag numbers and dates are formatted with. */
  intl: 'en-US' | 'zh-CN';
  title(name: string): string;
  status: Record<StatusLevel, string>;
  unlimited: string;
  tokens: string;
  left(amount: string): string;
  resetsIn(duration: string): string;
  resetDue: string;
  rollingReset(hours: number): string;
  noReset: string;
  reserved(amount: string): string;
  held(amount: string): string;
  others: string;
  budgets: string;
  more(count: number): string;
  none: string;
  thisKey: string;
  project(id: string): string;
  user(id: string): string;
  key(id: string): string;
  everyone: string;
  window: Record<'day' | 'week' | 'month' | 'total', string>;
  rolling(hours: number): string;
  /** Suffixes of days, hours and minutes in a countdown. */
  units: readonly [string, string, string];
}

export const CARD_TEXT: Record<Locale, CardText> = {
  en: {
    intl: 'en-US',
    title: (name) => `Quota · ${name}`,
    status: { normal: 'Normal', warning: 'Warning', critical: 'Critical', exceeded: 'Exceeded' },
    unlimited: 'Unlimited',
    tokens: 'tokens',
    left: (amount) => `${amount} left`,
    resetsIn: (duration) => `Resets in ${duration}`,
    resetDue: 'Resetting now',
    rollingReset: (hours) => `Usage leaves the window after ${hours} h`,
    noReset: 'All-time budget, never resets',
    reserved: (amount) => `${amount} held by requests in flight`,
    held: (amount) => `${amount} held`,
    others: 'Other budgets',
    budgets: 'Budgets',
    more: (count) => `+${count} more`,
    none: 'No budget applies, so usage is not limited.',
    thisKey: 'This key',
    project: (id) => `Project ${id}`,
    user: (id) => `User ${id}`,
    key: (id) => `Key ${id}`,
    everyone: 'Everyone',
    window: { day: 'daily', week: 'weekly', month: 'monthly', total: 'all time' },
    rolling: (hours) => `rolling ${hours} h`,
    units: [' d', ' h', ' m'],
  },
  zh: {
    intl: 'zh-CN',
    title: (name) => `额度 · ${name}`,
    status: { normal: '正常', warning: '接近上限', critical: '即将用完', exceeded: '已超额' },
    unlimited: '不限量',
    tokens: 'tokens',
    left: (amount) => `剩余 ${amount}`,
    resetsIn: (duration) => `${duration}后重置`,
    resetDue: '正在重置',
    rollingReset: (hours) => `用量 ${hours} 小时后移出窗口`,
    noReset: '总额度，不会重置',
    reserved: (amount) => `另有 ${amount} 被进行中的请求占用`,
    held: (amount) => `占用 ${amount}`,
    others: '其他预算',
    budgets: '预算',
    more: (count) => `还有 ${count} 项`,
    none: '没有适用的预算，用量不受限制。',
    thisKey: '此密钥',
    project: (id) => `项目 ${id}`,
    user: (id) => `用户 ${id}`,
    key: (id) => `密钥 ${id}`,
    everyone: '所有人',
    window: { day: '每日', week: '每周', month: '每月', total: '总计' },
    rolling: (hours) => `滚动 ${hours} 小时`,
    units: [' 天', ' 小时', ' 分钟'],
  },
};

/** Longest name drawn, in characters: the layout cuts it to its width anyway, this bounds the work. */
const MAX_TEXT_CHARS = 80;

/**
 * User-typed text (names, ids, time zones) as one plain line: control characters, line and
 * paragraph separators and bidi overrides become spaces (an override could reorder the rest of the
 * line), and very long text is cut with an ellipsis. The image draws text, never markup, so `<b>`
 * is drawn as the four characters it is.
 */
export function plainText(text: string): string {
  const line = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = [...line];
  return chars.length > MAX_TEXT_CHARS ? `${chars.slice(0, MAX_TEXT_CHARS - 1).join('')}…` : line;
}

export interface CardFormat {
  text: CardText;
  figure(value: number, unit: Unit): string;
  amount(value: number, unit: Unit): string;
  percent(percentage: number): string;
}

/** Number formatting for one locale, as the web card formats them. */
export function cardFormat(locale: Locale): CardFormat {
  const text = CARD_TEXT[locale];
  const int = new Intl.NumberFormat(text.intl, { maximumFractionDigits: 0 });
  const pct = new Intl.NumberFormat(text.intl, { maximumFractionDigits: 1 });
  const usd = new Intl.NumberFormat(text.intl, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const cents = new Intl.NumberFormat(text.intl, { maximumSignificantDigits: 2 });
  // Below a cent, two significant digits: "$0.0042", not "$0.00".
  const money = (v: number) => `$${v !== 0 && Math.abs(v) < 0.01 ? cents.format(v) : usd.format(v)}`;
  const figure = (v: number, unit: Unit) => (unit === 'usd' ? money(v) : int.format(v));
  return {
    text,
    figure,
    amount: (v, unit) => (unit === 'usd' ? money(v) : `${int.format(v)} ${text.tokens}`),
    percent: (p) => `${pct.format(p)}%`,
  };
}

/**
 * "8 d 4 h" / "8 天 4 小时": the two largest units, since the image is a snapshot (the web card
 * ticks every second instead). Minutes are rounded up, so a reset a few seconds away is "1 m".
 */
export function countdown(ms: number, text: CardText): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  const [d, h, m] = text.units;
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return hours > 0 ? `${days}${d} ${hours}${h}` : `${days}${d}`;
  if (hours > 0) return mins > 0 ? `${hours}${h} ${mins}${m}` : `${hours}${h}`;
  return `${mins}${m}`;
}

/** The reset as a countdown and a wall-clock time in the budget's own zone, or why there is none. */
export function resetText(resetsAt: string | null, window: WindowSpec, now: number, text: CardText): { countdown: string; at: string | null } {
  if (window.kind === 'rolling') return { countdown: text.rollingReset(window.hours), at: null };
  const at = resetsAt === null ? Number.NaN : Date.parse(resetsAt);
  if (Number.isNaN(at)) return { countdown: text.noReset, at: null };
  const left = at - now;
  return { countdown: left > 0 ? text.resetsIn(countdown(left, text)) : text.resetDue, at: wallClock(at, window, text) };
}

/** "Tue, Dec 1, 00:00 GMT+8" / "12月1日周二 GMT+8 00:00", in the window's zone (UTC if it has none). */
function wallClock(at: number, window: WindowSpec, text: CardText): string {
  const options: Intl.DateTimeFormatOptions = {
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
    timeZone: 'timeZone' in window ? window.timeZone : 'UTC',
  };
  try {
    return new Intl.DateTimeFormat(text.intl, options).format(at);
  } catch {
    // A zone this Node does not know (the config validated it with luxon's list): UTC.
    return new Intl.DateTimeFormat(text.intl, { ...options, timeZone: 'UTC' }).format(at);
  }
}

/** Who a budget is on, in words: the subject's own name for their own scope. */
export function scopeLabel(scope: string, subject: SubjectRef, text: CardText): string {
  const colon = scope.indexOf(':');
  const kind = colon < 0 ? scope : scope.slice(0, colon);
  const id = colon < 0 ? '' : scope.slice(colon + 1);
  if (kind === 'global') return text.everyone;
  if (kind === subject.kind && id === subject.id) return plainText(subject.name);
  if (kind === 'user') return text.user(plainText(id));
  if (kind === 'project') return text.project(plainText(id));
  if (kind === 'key') return subject.kind === 'user' ? text.thisKey : text.key(plainText(id));
  return plainText(scope);
}

export function windowLabel(window: WindowSpec, text: CardText): string {
  if (window.kind === 'rolling') return text.rolling(window.hours);
  if (window.kind === 'total') return text.window.total;
  return `${text.window[window.kind]} (${plainText(window.timeZone)})`;
}

/** The unit a budget is nearest to exhausting (tokens on a tie), as `/quota` picks the top one's. */
export function unitOf(b: BudgetStatus): Unit {
  const ratio = (used: number, limit: number | null) => (limit === null ? -1 : limit > 0 ? used / limit : used > 0 ? Infinity : 0);
  return ratio(b.usedUsd, b.limitUsd) > ratio(b.usedTokens, b.limitTokens) ? 'usd' : 'tokens';
}
