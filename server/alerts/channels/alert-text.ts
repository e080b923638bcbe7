import { DateTime } from 'luxon';
import { windowPeriod, type WindowSpec } from '../../quota/window.js';
import type { AlertEvent, AnomalyFacts, OverrunFacts, TopConsumer } from '../alert-event.js';
import { clip, plainText } from './escape.js';
import { describeRequest, requestSubject } from '../request-text.js';

export type Locale = 'en' | 'zh';

/** How urgent an alert reads; picks each vendor's colour and the title's marker. */
export type AlertLevel = 'notice' | 'warning' | 'critical' | 'exceeded';

/** One labelled line of an alert. */
export interface AlertFact {
  /** Our own words: safe in every format, never escaped. */
  label: string;
  /** Our numbers and words, with any user text already passed through the caller's escaper. */
  value: string;
  /** Short facts sit side by side where the vendor has columns (Slack and Feishu fields). */
  short: boolean;
}

/** An alert in words, format-neutral: each channel lays it out in its vendor's markup. */
export interface AlertText {
  level: AlertLevel;
  /** One line with a coloured marker, e.g. "🟡 Alice (user:alice) reached 80% of the monthly budget". */
  title: string;
  facts: AlertFact[];
  /** "lobe-quota · alert <id>": the id lets people match a message with `GET /admin/alerts`. */
  footer: string;
}

/** Makes user text safe for one format (see escape.ts). */
export type Escaper = (text: string) => string;

/** Consumers listed per kind: enough to see who drives the usage, small enough for WeCom's 4 KB. */
export const TOP_CONSUMERS_SHOWN = 5;

/**
 * The alert in `locale`, with every piece of user text (subject name, scope id, consumer ids, time
 * zone, anything unparseable) passed through `escape` and clipped, and nothing else.
 */
export function describeAlert(alert: AlertEvent, locale: Locale, escape: Escaper): AlertText {
  if (alert.request) return describeRequest(alert, alert.request, locale, escape);
  if (alert.kind === 'anomaly') return describeAnomaly(alert, locale, escape);
  if (alert.kind === 'overrun') return describeOverrun(alert, locale, escape);
  const t = TEXT[locale];
  const level = alertLevel(alert);
  const who = whoText(alert, t, escape);
  const amount = (value: number) => formatAmount(value, alert.unit);
  const instant = (iso: string) => formatInstant(iso, alert.window, escape);
  const noun = t.budgetNoun(alert.window, escape);

  const title =
    alert.kind === 'projected'
      ? `${PROJECTED_MARKER} ${t.projectedTitle(who, noun)}`
      : `${MARKERS[level]} ${t.thresholdTitle(who, noun, formatThreshold(alert))}`;

  const facts: AlertFact[] = [
    { label: t.who, value: who, short: true },
    { label: t.budget, value: t.budgetText(alert.window, escape), short: true },
    { label: t.usage, value: t.usageOf(usedAmount(alert), amount(alert.limit)), short: true },
    {
      label: t.percentage,
      value: `${formatPercent(alert.percentage)}${alert.threshold === null ? '' : t.aside(t.threshold(formatPercent(alert.threshold)))}`,
      short: true,
    },
    { label: t.resets, value: alert.resetsAt === null ? t.noReset(alert.window) : instant(alert.resetsAt), short: true },
  ];
  if (alert.projectedAt !== null) facts.push({ label: t.projected, value: instant(alert.projectedAt), short: true });
  const users = consumerList(alert.topConsumers, 'user', alert.unit, t, escape);
  if (users !== null) facts.push({ label: t.topUsers, value: users, short: false });
  const models = consumerList(alert.topConsumers, 'model', alert.unit, t, escape);
  if (models !== null) facts.push({ label: t.topModels, value: models, short: false });
  facts.push({ label: t.firedAt, value: instant(alert.firedAt), short: true });

  return { level, title, facts, footer: `lobe-quota · ${t.alert} ${escape(clip(alert.id, 100))}` };
}

/**
 * A one-line summary for mail subjects, e.g. `[lobe-quota] user:alice at 80% of 100,000 tokens
 * (month)`. Plain text: the scope id is only folded onto one line.
 */
export function alertSubject(alert: AlertEvent, locale: Locale): string {
  const t = TEXT[locale];
  const scope = plainText(clip(alert.scope, 200));
  if (alert.request) return requestSubject(alert, alert.request, locale, plainText);
  if (alert.kind === 'anomaly') return `[lobe-quota] ${t.anomalySubject(scope, anomalyOf(alert))}`;
  if (alert.kind === 'overrun') {
    const o = overrunOf(alert);
    return `[lobe-quota] ${t.overrunSubject(scope, plainText(clip(o.model, 100)), TOKENS.format(o.chargedOutputTokens), TOKENS.format(o.allowedOutputTokens))}`;
  }
  const limit = formatAmount(alert.limit, alert.unit);
  const period = windowPeriod(alert.window);
  const subject =
    alert.kind === 'projected'
      ? t.projectedSubject(scope, limit, period, alert.projectedAt === null ? null : formatInstant(alert.projectedAt, alert.window, plainText))
      : t.thresholdSubject(scope, formatThreshold(alert), limit, period);
  return `[lobe-quota] ${subject}`;
}

/** Colours follow `/quota`'s default status levels (80 / 95 / 100 %); a projection is a warning. */
export function alertLevel(alert: AlertEvent): AlertLevel {
  const p = alert.percentage;
  const level: AlertLevel = p >= 100 ? 'exceeded' : p >= 95 ? 'critical' : p >= 80 ? 'warning' : 'notice';
  // A spike is not a budget running out, but it is worth a look: always a warning.
  if (alert.kind === 'anomaly') return 'warning';
  // Money was spent past what a budget let the request have: someone has to act on that upstream.
  if (alert.kind === 'overrun') return 'critical';
  return alert.kind === 'projected' && level === 'notice' ? 'warning' : level;
}

/** An anomaly's numbers; a payload without them (never written so) is read from usage and limit. */
function anomalyOf(alert: AlertEvent): AnomalyFacts {
  return alert.anomaly ?? { lastHourTokens: alert.usage, baselineHourlyTokens: 0, ratio: null, baselineHours: 24, factor: 0 };
}

/** A spike: the last hour against the subject's own usual rate, not against a budget. */
function describeAnomaly(alert: AlertEvent, locale: Locale, escape: Escaper): AlertText {
  const t = TEXT[locale];
  const a = anomalyOf(alert);
  const who = whoText(alert, t, escape);
  const facts: AlertFact[] = [
    { label: t.who, value: who, short: true },
    { label: t.lastHour, value: formatAmount(a.lastHourTokens, 'tokens'), short: true },
    { label: t.usualRate, value: t.rateText(TOKENS.format(a.baselineHourlyTokens), a.baselineHours), short: true },
    { label: t.alertsAbove, value: t.tripText(formatAmount(alert.limit, 'tokens'), a.factor), short: true },
  ];
  const users = consumerList(alert.topConsumers, 'user', 'tokens', t, escape);
  if (users !== null) facts.push({ label: t.topUsers, value: users, short: false });
  const models = consumerList(alert.topConsumers, 'model', 'tokens', t, escape);
  if (models !== null) facts.push({ label: t.topModels, value: models, short: false });
  facts.push({ label: t.firedAt, value: formatInstant(alert.firedAt, alert.window, escape), short: true });
  return {
    level: 'warning',
    title: `${ANOMALY_MARKER} ${t.anomalyTitle(who, a)}`,
    facts,
    footer: `lobe-quota · ${t.alert} ${escape(clip(alert.id, 100))}`,
  };
}

/** An overrun's numbers; a payload without them (never written so) is read from usage and limit. */
function overrunOf(alert: AlertEvent): OverrunFacts {
  const id = alert.scope.slice(alert.scope.indexOf(':') + 1);
  return alert.overrun ?? { requestId: '', model: '', userId: id, keyId: '', allowedOutputTokens: alert.limit, chargedOutputTokens: alert.usage };
}

/** An upstream that charged a request more output than it allowed: which model, how much more, for whom. */
function describeOverrun(alert: AlertEvent, locale: Locale, escape: Escaper): AlertText {
  const t = TEXT[locale];
  const o = overrunOf(alert);
  const who = whoText(alert, t, escape);
  const model = escape(clip(o.model, 100));
  const charged = TOKENS.format(o.chargedOutputTokens);
  const allowed = TOKENS.format(o.allowedOutputTokens);
  const over = TOKENS.format(o.chargedOutputTokens - o.allowedOutputTokens);
  const facts: AlertFact[] = [
    { label: t.who, value: who, short: true },
    { label: t.model, value: model, short: true },
    { label: t.allowedOutput, value: formatAmount(o.allowedOutputTokens, 'tokens'), short: true },
    { label: t.chargedOutput, value: formatAmount(o.chargedOutputTokens, 'tokens'), short: true },
    { label: t.overBy, value: `${over} tokens`, short: true },
    { label: t.key, value: escape(clip(o.keyId, 100)), short: true },
    { label: t.request, value: escape(clip(o.requestId, 100)), short: false },
    { label: t.firedAt, value: formatInstant(alert.firedAt, alert.window, escape), short: true },
  ];
  return {
    level: 'critical',
    title: `${OVERRUN_MARKER} ${t.overrunTitle(who, model, charged, allowed, over)}`,
    facts,
    footer: `lobe-quota · ${t.alert} ${escape(clip(alert.id, 100))}`,
  };
}

/** "12.5×"; the ratio carries one decimal. */
const formatRatio = (ratio: number): string => `${Number.isInteger(ratio) ? ratio : ratio.toFixed(1)}×`;

const MARKERS: Record<AlertLevel, string> = { notice: '🔵', warning: '🟡', critical: '🟠', exceeded: '🔴' };
const PROJECTED_MARKER = '📈';
const ANOMALY_MARKER = '⚡';
const OVERRUN_MARKER = '💸';

const TOKENS = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** "100,000 tokens" or "$10.00"; amounts under a cent keep up to four decimals instead of "$0.00". */
export function formatAmount(value: number, unit: 'tokens' | 'usd'): string {
  if (unit === 'tokens') return `${TOKENS.format(value)} tokens`;
  const small = value !== 0 && Math.abs(value) < 0.01;
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: small ? 4 : 2 })}`;
}

/** The used side of "80,400 / 100,000 tokens": the unit is said once, after the limit. */
const usedAmount = (alert: AlertEvent): string =>
  alert.unit === 'tokens' ? TOKENS.format(alert.usage) : formatAmount(alert.usage, 'usd');

/** "80.4%" (alerts carry one decimal); whole numbers such as thresholds stay "80%". */
export const formatPercent = (value: number): string => `${Number.isInteger(value) ? value : value.toFixed(1)}%`;

/** The percent a threshold alert is about: the threshold crossed, not where usage landed past it. */
const formatThreshold = (alert: AlertEvent): string => formatPercent(alert.threshold ?? alert.percentage);

/**
 * "2026-12-01 00:00 UTC+08:00": a calendar budget's instants are shown on its own wall clock, which
 * is what its owner thinks in; other windows keep the offset the instant was written with. Anything
 * that does not parse is shown as given, escaped.
 */
export function formatInstant(iso: string, window: WindowSpec, escape: Escaper): string {
  const parsed = DateTime.fromISO(iso, { setZone: true });
  if (!parsed.isValid) return escape(clip(iso, 60));
  const local = 'timeZone' in window ? parsed.setZone(window.timeZone) : parsed;
  const shown = local.isValid ? local : parsed;
  const offset = shown.offset === 0 ? 'UTC' : `UTC${shown.toFormat('ZZ')}`;
  return `${shown.toFormat('yyyy-MM-dd HH:mm')} ${offset}`;
}

/** "Alice (user:alice)", or just the scope when the subject has no name of its own. */
function whoText(alert: AlertEvent, t: Text, escape: Escaper): string {
  const scope = escape(clip(alert.scope, 200));
  const name = alert.subjectName.trim();
  const id = alert.scope.slice(alert.scope.indexOf(':') + 1);
  if (name === '' || name === alert.scope || name === id) return scope;
  return `${escape(clip(name, 100))}${t.aside(scope)}`;
}

function consumerList(consumers: readonly TopConsumer[], kind: TopConsumer['kind'], unit: AlertEvent['unit'], t: Text, escape: Escaper): string | null {
  const shown = consumers
    .filter((c) => c.kind === kind)
    .sort((a, b) => b.usage - a.usage)
    .slice(0, TOP_CONSUMERS_SHOWN);
  if (shown.length === 0) return null;
  return shown.map((c) => `${escape(clip(c.id, 100))}${t.aside(formatAmount(c.usage, unit))}`).join(t.listSeparator);
}

interface Text {
  /** A parenthetical with its leading space: " (user:alice)" but "（user:alice）". */
  aside(text: string): string;
  listSeparator: string;
  thresholdTitle(who: string, budget: string, percent: string): string;
  projectedTitle(who: string, budget: string): string;
  thresholdSubject(scope: string, percent: string, limit: string, period: string): string;
  projectedSubject(scope: string, limit: string, period: string, at: string | null): string;
  anomalyTitle(who: string, anomaly: AnomalyFacts): string;
  anomalySubject(scope: string, anomaly: AnomalyFacts): string;
  /** "1,000 tokens/h over the 24 h before" */
  rateText(tokensPerHour: string, hours: number): string;
  tripText(tokens: string, factor: number): string;
  lastHour: string;
  usualRate: string;
  alertsAbove: string;
  /** "gpt-4o charged 5,000 output tokens where 1,000 were allowed (4,000 more), for Alice (user:alice)" */
  overrunTitle(who: string, model: string, charged: string, allowed: string, over: string): string;
  overrunSubject(scope: string, model: string, charged: string, allowed: string): string;
  model: string;
  allowedOutput: string;
  chargedOutput: string;
  overBy: string;
  key: string;
  request: string;
  /** The budget as a noun in titles: "the monthly budget" / "每月预算". */
  budgetNoun(window: WindowSpec, escape: Escaper): string;
  /** The budget fact, with its time zone. */
  budgetText(window: WindowSpec, escape: Escaper): string;
  usageOf(used: string, limit: string): string;
  threshold(percent: string): string;
  noReset(window: WindowSpec): string;
  who: string;
  budget: string;
  usage: string;
  percentage: string;
  resets: string;
  projected: string;
  topUsers: string;
  topModels: string;
  firedAt: string;
  alert: string;
}

const EN_PERIOD = { day: 'daily', week: 'weekly', month: 'monthly' } as const;
const ZH_PERIOD = { day: '每日', week: '每周', month: '每月' } as const;

const TEXT: Record<Locale, Text> = {
  en: {
    aside: (text) => ` (${text})`,
    listSeparator: ', ',
    thresholdTitle: (who, budget, percent) => `${who} reached ${percent} of ${budget}`,
    projectedTitle: (who, budget) => `${who} is on track to use up ${budget} before it resets`,
    thresholdSubject: (scope, percent, limit, period) => `${scope} at ${percent} of ${limit} (${period})`,
    projectedSubject: (scope, limit, period, at) => `${scope} projected to use up ${limit} (${period})${at === null ? '' : ` by ${at}`}`,
    anomalyTitle: (who, a) =>
      a.ratio === null
        ? `${who}: ${formatAmount(a.lastHourTokens, 'tokens')} in the last hour, with no usage in the ${a.baselineHours} h before`
        : `${who}: usage in the last hour is ${formatRatio(a.ratio)} the usual hourly rate (baseline ${TOKENS.format(a.baselineHourlyTokens)} tokens/h over ${a.baselineHours} h)`,
    anomalySubject: (scope, a) =>
      `${scope} usage spike: ${a.ratio === null ? 'no usage before' : `${formatRatio(a.ratio)} the usual hourly rate`} (${formatAmount(a.lastHourTokens, 'tokens')} in the last hour)`,
    rateText: (tokens, hours) => `${tokens} tokens/h over the ${hours} h before`,
    tripText: (tokens, factor) => `${tokens} (${formatRatio(factor)} the usual rate, or the minimum)`,
    lastHour: 'Last hour',
    usualRate: 'Usual rate',
    alertsAbove: 'Alerts above',
    overrunTitle: (who, model, charged, allowed, over) =>
      `${model} charged ${charged} output tokens where ${allowed} were allowed (${over} more), for ${who}`,
    overrunSubject: (scope, model, charged, allowed) => `${model} charged ${charged} output tokens where ${allowed} were allowed (${scope})`,
    model: 'Model',
    allowedOutput: 'Output allowed',
    chargedOutput: 'Output charged',
    overBy: 'Over by',
    key: 'Key',
    request: 'Request',
    budgetNoun: (window) => {
      switch (window.kind) {
        case 'rolling':
          return `the rolling ${window.hours}-hour budget`;
        case 'total':
          return 'the all-time budget';
        default:
          return `the ${EN_PERIOD[window.kind]} budget`;
      }
    },
    budgetText: (window, escape) => {
      switch (window.kind) {
        case 'rolling':
          return `rolling, the last ${window.hours} h`;
        case 'total':
          return 'all time';
        default:
          return `${EN_PERIOD[window.kind]}, ${escape(window.timeZone)} time`;
      }
    },
    usageOf: (used, limit) => `${used} / ${limit}`,
    threshold: (percent) => `threshold ${percent}`,
    noReset: (window) =>
      window.kind === 'rolling' ? `gradually, as usage older than ${window.hours} h leaves the window` : window.kind === 'total' ? 'never' : '—',
    who: 'Who',
    budget: 'Budget',
    usage: 'Usage',
    percentage: 'Used',
    resets: 'Resets',
    projected: 'Projected to run out',
    topUsers: 'Top users',
    topModels: 'Top models',
    firedAt: 'Fired at',
    alert: 'alert',
  },
  zh: {
    aside: (text) => `（${text}）`,
    listSeparator: '、',
    thresholdTitle: (who, budget, percent) => `${who}已用到${budget}的 ${percent}`,
    projectedTitle: (who, budget) => `${who}的${budget}预计将在重置前用完`,
    thresholdSubject: (scope, percent, limit, period) => `${scope} 已用到 ${limit} 的 ${percent}（${period}）`,
    projectedSubject: (scope, limit, period, at) => `${scope} 预计${at === null ? '' : `于 ${at} `}用完 ${limit}（${period}）`,
    anomalyTitle: (who, a) =>
      a.ratio === null
        ? `${who}最近一小时用量 ${formatAmount(a.lastHourTokens, 'tokens')}，此前 ${a.baselineHours} 小时没有用量`
        : `${who}最近一小时用量是平时每小时的 ${formatRatio(a.ratio)}（基线 ${TOKENS.format(a.baselineHourlyTokens)} tokens/小时，按前 ${a.baselineHours} 小时计）`,
    anomalySubject: (scope, a) =>
      `${scope} 用量突增：${a.ratio === null ? '此前没有用量' : `平时每小时的 ${formatRatio(a.ratio)}`}（最近一小时 ${formatAmount(a.lastHourTokens, 'tokens')}）`,
    rateText: (tokens, hours) => `${tokens} tokens/小时（前 ${hours} 小时）`,
    tripText: (tokens, factor) => `${tokens}（平时的 ${formatRatio(factor)}，或最低值）`,
    lastHour: '最近一小时',
    usualRate: '平时用量',
    alertsAbove: '告警线',
    overrunTitle: (who, model, charged, allowed, over) =>
      `${model} 为${who}计费 ${charged} 个输出 token，超出允许的 ${allowed} 个（多 ${over} 个）`,
    overrunSubject: (scope, model, charged, allowed) => `${model} 计费 ${charged} 个输出 token，仅允许 ${allowed} 个（${scope}）`,
    model: '模型',
    allowedOutput: '允许的输出',
    chargedOutput: '计费的输出',
    overBy: '超出',
    key: '密钥',
    request: '请求',
    budgetNoun: (window) => {
      switch (window.kind) {
        case 'rolling':
          return `滚动 ${window.hours} 小时预算`;
        case 'total':
          return '累计预算';
        default:
          return `${ZH_PERIOD[window.kind]}预算`;
      }
    },
    budgetText: (window, escape) => {
      switch (window.kind) {
        case 'rolling':
          return `滚动窗口（最近 ${window.hours} 小时）`;
        case 'total':
          return '累计（不重置）';
        default:
          return `${ZH_PERIOD[window.kind]}（时区 ${escape(window.timeZone)}）`;
      }
    },
    usageOf: (used, limit) => `${used} / ${limit}`,
    threshold: (percent) => `阈值 ${percent}`,
    noReset: (window) =>
      window.kind === 'rolling' ? `逐步释放（超过 ${window.hours} 小时的用量移出窗口）` : window.kind === 'total' ? '不重置' : '—',
    who: '对象',
    budget: '预算',
    usage: '用量',
    percentage: '已用比例',
    resets: '重置时间',
    projected: '预计用完时间',
    topUsers: '用量最多的用户',
    topModels: '用量最多的模型',
    firedAt: '触发时间',
    alert: '告警',
  },
};
