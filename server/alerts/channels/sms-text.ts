/**
 * SMS is the last resort: one short line that fits one message, and phone numbers that never
 * appear whole in anything stored or logged. Pure functions, shared by the Twilio and Alibaba Cloud
 * channels.
 */
import type { WindowSpec } from '../../quota/window.js';
import type { AlertEvent } from '../alert-event.js';
import { formatAmount, formatPercent, type Locale } from './alert-text.js';
import { plainText } from './escape.js';

/**
 * One SMS segment: 160 GSM-7 septets, or 70 UTF-16 units once any character is outside GSM-7 (all
 * Chinese text, and an English text naming "张三" or carrying an emoji). A longer text is split and
 * billed per part, and some handsets show the parts out of order: we shorten instead.
 */
export const GSM7_MAX_UNITS = 160;
export const UCS2_MAX_UNITS = 70;

const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
/** Sent as an escape plus the character: two septets each. */
const GSM7_EXTENSION = new Set('^{}\\[~]|€\f');

/** How a text is encoded in an SMS and how many units of its segment it takes. */
export function smsUnits(text: string): { encoding: 'gsm7' | 'ucs2'; units: number; max: number } {
  let septets = 0;
  for (const ch of text) {
    if (GSM7_BASIC.has(ch)) septets += 1;
    else if (GSM7_EXTENSION.has(ch)) septets += 2;
    else return { encoding: 'ucs2', units: text.length, max: UCS2_MAX_UNITS };
  }
  return { encoding: 'gsm7', units: septets, max: GSM7_MAX_UNITS };
}

export const fitsOneSms = (text: string): boolean => {
  const { units, max } = smsUnits(text);
  return units <= max;
};

/**
 * "…" is not in GSM-7: an English text cut with it would switch to UCS-2 and lose 90 characters of
 * room, so English cuts with three dots.
 */
const ELLIPSIS: Record<Locale, string> = { en: '...', zh: '…' };

/** Shortest a user-supplied piece (name, scope, model) is cut to before the whole line is cut instead. */
const MIN_PIECE = 8;

/**
 * The alert as one SMS line in `locale`, always within one segment (see `smsUnits`). Names, scopes
 * and model ids are what grows: the subject's name goes first (the scope alone still says who),
 * then the longest of them is cut with an ellipsis; only if our own words alone overflow is the
 * line itself cut. Kinds this module does not know (added later) get a generic line.
 */
export function smsText(alert: AlertEvent, locale: Locale): string {
  const t = SMS_TEXT[locale];
  const scope = plainText(alert.scope);
  const name = plainText(alert.subjectName).trim();
  const id = alert.scope.slice(alert.scope.indexOf(':') + 1);
  const named = name !== '' && name !== alert.scope && name !== id ? t.who(name, scope) : scope;
  const render = lineFor(alert, t);
  const candidates = named === scope ? [[scope]] : [[named], [scope]];
  const extra = alert.kind === 'overrun' ? [plainText(alert.overrun?.model ?? '')] : [];
  for (const [who] of candidates) {
    const text = render([who ?? scope, ...extra]);
    if (fitsOneSms(text)) return text;
  }
  return shorten(render, [scope, ...extra], ELLIPSIS[locale]);
}

type Render = (pieces: string[]) => string;

/** Cuts the longest piece by the overflow until the line fits, then the line itself if it must. */
function shorten(render: Render, start: string[], ellipsis: string): string {
  const pieces = [...start];
  for (let round = 0; round < 2 * pieces.length + 2; round++) {
    const text = render(pieces);
    const { units, max } = smsUnits(text);
    if (units <= max) return text;
    let longest = 0;
    pieces.forEach((p, i) => {
      if (p.length > (pieces[longest] ?? '').length) longest = i;
    });
    const piece = pieces[longest] ?? '';
    if (piece.length <= MIN_PIECE) break;
    // Units and characters differ (GSM-7 extension characters count two): cutting by the overflow
    // in characters may leave a little over, which the next round takes.
    const keep = Math.max(MIN_PIECE - ellipsis.length, piece.length - (units - max) - ellipsis.length);
    pieces[longest] = `${[...piece].slice(0, keep).join('')}${ellipsis}`;
  }
  return cutLine(render(pieces), ellipsis);
}

function cutLine(text: string, ellipsis: string): string {
  const chars = [...text];
  for (let keep = chars.length; keep > 0; keep--) {
    const candidate = keep === chars.length ? text : `${chars.slice(0, keep).join('')}${ellipsis}`;
    if (fitsOneSms(candidate)) return candidate;
  }
  return ellipsis;
}

/** The alert's line, given its pieces of user text: [who] or, for an overrun, [who, model]. */
function lineFor(alert: AlertEvent, t: SmsText): Render {
  const amount = (value: number) => formatAmount(value, alert.unit);
  const used = `${alert.unit === 'tokens' ? COUNT.format(alert.usage) : amount(alert.usage)} / ${amount(alert.limit)}`;
  switch (alert.kind) {
    case 'threshold':
      return ([who = '']) => t.threshold(who, t.budget(alert.window), formatPercent(alert.threshold ?? alert.percentage), used);
    case 'projected':
      return ([who = '']) => t.projected(who, t.budget(alert.window), used);
    case 'anomaly': {
      const lastHour = formatAmount(alert.anomaly?.lastHourTokens ?? alert.usage, 'tokens');
      const ratio = alert.anomaly ? alert.anomaly.ratio : null;
      return ([who = '']) => t.anomaly(who, lastHour, ratio === null ? null : `${Number.isInteger(ratio) ? ratio : ratio.toFixed(1)}x`);
    }
    case 'overrun': {
      const charged = COUNT.format(alert.overrun?.chargedOutputTokens ?? alert.usage);
      const allowed = COUNT.format(alert.overrun?.allowedOutputTokens ?? alert.limit);
      return ([who = '', model = '']) => t.overrun(who, model, charged, allowed);
    }
    case 'request': {
      const r = alert.request;
      const asked = r ? (r.amountTokens > 0 ? `${COUNT.format(r.amountTokens)} tokens` : formatAmount(r.amountUsd, 'usd')) : '';
      return ([who = '']) => t.request(who, asked);
    }
    case 'request_decided': {
      const r = alert.request;
      const granted = r?.grantedTokens ? `${COUNT.format(r.grantedTokens)} tokens` : r?.grantedUsd ? formatAmount(r.grantedUsd, 'usd') : null;
      return ([who = '']) => t.decided(who, r?.state === 'approved', granted);
    }
    default:
      // A kind added after this module (e.g. an increase request): say what and for whom.
      return ([who = '']) => t.other(plainText(String(alert.kind)).slice(0, 20), who, formatPercent(alert.percentage));
  }
}

/**
 * Alibaba Cloud sends only pre-approved templates, filled with short variables. These are the
 * variables lobe-quota fills; a template may use any of them. Each is one line, at most
 * TEMPLATE_PARAM_MAX characters (cut with "…").
 *
 * - `scope`: the budget's scope, e.g. "user:alice"
 * - `name`: the subject's name, e.g. "Alice" (the scope when it has none)
 * - `kind`: what happened, in the channel's language ("threshold" / "阈值", "projected" /
 *   "预计用完", "spike" / "用量突增", "overrun" / "超额计费"; other kinds as named)
 * - `percent`: the threshold crossed, else the percentage reached, e.g. "100%"
 * - `usage`: e.g. "100,400/100,000" (tokens: no unit, to stay short) or "$51.20/$50.00"
 */
export interface SmsTemplateParams {
  scope: string;
  name: string;
  kind: string;
  percent: string;
  usage: string;
}

export const TEMPLATE_PARAM_MAX = 20;

export function smsTemplateParams(alert: AlertEvent, locale: Locale): SmsTemplateParams {
  const t = SMS_TEXT[locale];
  const known = alert.kind in t.kinds ? t.kinds[alert.kind as keyof SmsText['kinds']] : plainText(String(alert.kind));
  const name = plainText(alert.subjectName).trim();
  const amount = (value: number) => formatAmount(value, alert.unit);
  return {
    scope: clipParam(plainText(alert.scope)),
    name: clipParam(name === '' ? plainText(alert.scope) : name),
    kind: clipParam(known),
    percent: clipParam(formatPercent(alert.threshold ?? alert.percentage)),
    usage: clipParam(alert.unit === 'tokens' ? `${COUNT.format(alert.usage)}/${COUNT.format(alert.limit)}` : `${amount(alert.usage)}/${amount(alert.limit)}`),
  };
}

const clipParam = (text: string): string => {
  const chars = [...text];
  return chars.length <= TEMPLATE_PARAM_MAX ? text : `${chars.slice(0, TEMPLATE_PARAM_MAX - 1).join('')}…`;
};

/**
 * Every run of 7 or more digits (a leading "+" kept) with all but its last 4 digits starred:
 * "+8613800138000" → "+*********8000". Applied to every error text an SMS channel produces, since
 * vendors quote the number back ("The 'To' number +1500… is not valid", or Alibaba's string to sign),
 * and error texts are stored in the outbox, shown by `GET /admin/alerts` and logged.
 */
export const maskPhoneNumbers = (text: string): string =>
  text.replace(/(\+?)(\d{7,})/g, (_m, plus: string, digits: string) => `${plus}${'*'.repeat(digits.length - 4)}${digits.slice(-4)}`);

/** One number, masked the same way (for naming a recipient in an error). */
export const maskPhoneNumber = (number: string): string => maskPhoneNumbers(number);

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

interface SmsText {
  who(name: string, scope: string): string;
  budget(window: WindowSpec): string;
  threshold(who: string, budget: string, percent: string, used: string): string;
  projected(who: string, budget: string, used: string): string;
  anomaly(who: string, lastHour: string, ratio: string | null): string;
  overrun(who: string, model: string, charged: string, allowed: string): string;
  other(kind: string, who: string, percent: string): string;
  /** An increase request (its links are too long for a text: the admin approves from another channel or the dashboard). */
  request(who: string, amount: string): string;
  decided(who: string, approved: boolean, granted: string | null): string;
  kinds: Record<'threshold' | 'projected' | 'anomaly' | 'overrun', string>;
}

const EN_PERIOD = { day: 'daily', week: 'weekly', month: 'monthly' } as const;
const ZH_PERIOD = { day: '每日', week: '每周', month: '每月' } as const;

const SMS_TEXT: Record<Locale, SmsText> = {
  en: {
    who: (name, scope) => `${name} (${scope})`,
    budget: (w) => (w.kind === 'rolling' ? `the ${w.hours}-hour budget` : w.kind === 'total' ? 'the all-time budget' : `the ${EN_PERIOD[w.kind]} budget`),
    threshold: (who, budget, percent, used) => `lobe-quota: ${who} reached ${percent} of ${budget} (${used})`,
    projected: (who, budget, used) => `lobe-quota: ${who} will use up ${budget} before it resets (${used})`,
    anomaly: (who, lastHour, ratio) =>
      `lobe-quota: ${who} used ${lastHour} in the last hour, ${ratio === null ? 'with no usage before' : `${ratio} the usual rate`}`,
    overrun: (who, model, charged, allowed) => `lobe-quota: ${model} charged ${charged} output tokens where ${allowed} were allowed, for ${who}`,
    other: (kind, who, percent) => `lobe-quota: ${kind} alert for ${who} (${percent})`,
    request: (who, amount) => `lobe-quota: ${who} asks for ${amount} more`,
    decided: (who, approved, granted) => `lobe-quota: ${who}'s request was ${approved ? `approved${granted === null ? '' : ` (+${granted})`}` : 'denied'}`,
    kinds: { threshold: 'threshold', projected: 'projected', anomaly: 'spike', overrun: 'overrun' },
  },
  zh: {
    who: (name, scope) => `${name}（${scope}）`,
    budget: (w) => (w.kind === 'rolling' ? `滚动${w.hours}小时预算` : w.kind === 'total' ? '累计预算' : `${ZH_PERIOD[w.kind]}预算`),
    threshold: (who, budget, percent, used) => `lobe-quota：${who}已用到${budget}的${percent}（${used}）`,
    projected: (who, budget, used) => `lobe-quota：${who}的${budget}预计在重置前用完（${used}）`,
    anomaly: (who, lastHour, ratio) => `lobe-quota：${who}最近一小时用量${lastHour}，${ratio === null ? '此前没有用量' : `是平时的${ratio}`}`,
    overrun: (who, model, charged, allowed) => `lobe-quota：${model}为${who}计费${charged}个输出token，仅允许${allowed}个`,
    other: (kind, who, percent) => `lobe-quota：${who}的${kind}告警（${percent}）`,
    request: (who, amount) => `lobe-quota：${who}申请增加${amount}`,
    decided: (who, approved, granted) => `lobe-quota：${who}的额度申请已${approved ? `批准${granted === null ? '' : `（+${granted}）`}` : '拒绝'}`,
    kinds: { threshold: '阈值', projected: '预计用完', anomaly: '用量突增', overrun: '超额计费' },
  },
};
