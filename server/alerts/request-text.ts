import type { AlertEvent, RequestFacts } from './alert-event.js';
import type { AlertFact, AlertText, Escaper, Locale } from './channels/alert-text.js';
import { clip } from './channels/escape.js';

/**
 * Increase requests in words, for the vendor channels (the webhook sends the JSON with its links):
 * who asked for how much on which budget and why, and the two one-click links; or the decision.
 */

const TEXT = {
  en: {
    asked: (who: string, amount: string) => `🙋 ${who} asks for ${amount} more`,
    decided: (who: string, state: string) => `✅ ${who}'s request was ${state}`,
    budget: 'Budget',
    usage: 'Usage',
    reason: 'Reason',
    approve: 'Approve',
    deny: 'Deny',
    granted: 'Granted',
    by: 'Decided by',
    subjectAsked: (who: string, amount: string) => `[lobe-quota] ${who} asks for ${amount} more`,
    subjectDecided: (who: string, state: string) => `[lobe-quota] ${who}'s request was ${state}`,
  },
  zh: {
    asked: (who: string, amount: string) => `🙋 ${who} 申请增加 ${amount}`,
    decided: (who: string, state: string) => `✅ ${who} 的额度申请已${state === 'approved' ? '批准' : '拒绝'}`,
    budget: '预算',
    usage: '用量',
    reason: '理由',
    approve: '批准',
    deny: '拒绝',
    granted: '已增加',
    by: '决定方式',
    subjectAsked: (who: string, amount: string) => `[lobe-quota] ${who} 申请增加 ${amount}`,
    subjectDecided: (who: string, state: string) => `[lobe-quota] ${who} 的额度申请已${state === 'approved' ? '批准' : '拒绝'}`,
  },
} as const;

const amountOf = (tokens: number, usd: number): string => (tokens > 0 ? `${tokens.toLocaleString('en-US')} tokens` : `$${usd}`);

export function describeRequest(alert: AlertEvent, request: RequestFacts, locale: Locale, escape: Escaper): AlertText {
  const t = TEXT[locale];
  const who = escape(clip(`${alert.subjectName} (user:${request.userId})`, 200));
  const asked = amountOf(request.amountTokens, request.amountUsd);
  const facts: AlertFact[] = [
    { label: t.budget, value: escape(clip(request.budgetKey, 300)), short: true },
    { label: t.usage, value: `${alert.percentage}%`, short: true },
  ];
  if (request.reason !== null) facts.push({ label: t.reason, value: escape(clip(request.reason, 500)), short: false });
  if (alert.kind === 'request' && alert.links) {
    facts.push({ label: t.approve, value: escape(alert.links.approve), short: false }, { label: t.deny, value: escape(alert.links.deny), short: false });
  } else {
    if (request.grantedTokens !== null || request.grantedUsd !== null) facts.push({ label: t.granted, value: amountOf(request.grantedTokens ?? 0, request.grantedUsd ?? 0), short: true });
    facts.push({ label: t.by, value: request.decidedBy ?? '—', short: true });
  }
  return {
    level: alert.kind === 'request' ? 'warning' : 'notice',
    title: alert.kind === 'request' ? t.asked(who, asked) : t.decided(who, request.state),
    facts,
    footer: `lobe-quota · ${escape(clip(alert.id, 100))}`,
  };
}

export function requestSubject(alert: AlertEvent, request: RequestFacts, locale: Locale, plain: Escaper): string {
  const t = TEXT[locale];
  const who = plain(clip(alert.subjectName, 100));
  return alert.kind === 'request' ? t.subjectAsked(who, amountOf(request.amountTokens, request.amountUsd)) : t.subjectDecided(who, request.state);
}
