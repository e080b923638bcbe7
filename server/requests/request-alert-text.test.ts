import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../alerts/alert-event.js';
import { alertSubject, describeAlert } from '../alerts/channels/alert-text.js';
import { acceptsAlert } from '../alerts/channels/index.js';
import { channelConfigSchema } from '../alerts/channels/config-schema.js';

const request: AlertEvent = {
  id: 'alert_1',
  kind: 'request',
  scope: 'user:alice',
  subjectName: 'Alice',
  window: { kind: 'day', timeZone: 'UTC' },
  threshold: null,
  percentage: 100,
  usage: 30,
  limit: 30,
  unit: 'tokens',
  resetsAt: null,
  firedAt: '2026-11-22T12:00:00.000Z',
  projectedAt: null,
  topConsumers: [],
  request: {
    id: 'req_1', userId: 'alice', keyId: 'key_1', scope: 'user:alice', budgetKey: 'user:alice|day:UTC', amount: 20_000, amountTokens: 20_000, amountUsd: 0,
    reason: '<release>', state: 'open', createdAt: '2026-11-22T12:00:00.000Z', decidedAt: null, decidedBy: null, grantedTokens: null, grantedUsd: null, grantId: null,
  },
  links: { approve: 'https://q.example/requests/req_1/approve?sig=a', deny: 'https://q.example/requests/req_1/deny?sig=b' },
};

describe('request alerts in the vendor channels', () => {
  it('say who asks for how much, with both links, and user text escaped', () => {
    const text = describeAlert(request, 'en', (s) => s.replaceAll('<', '&lt;'));
    expect(text.title).toContain('Alice (user:alice) asks for 20,000 tokens more');
    expect(text.facts.map((f) => f.value)).toEqual(expect.arrayContaining(['&lt;release>', request.links?.approve, request.links?.deny]));
    expect(alertSubject(request, 'zh')).toBe('[lobe-quota] Alice 申请增加 20,000 tokens');
    const decided: AlertEvent = { ...request, kind: 'request_decided', links: undefined, request: { ...request.request!, state: 'approved', decidedBy: 'link', grantedTokens: 20_000 } } as AlertEvent;
    expect(describeAlert(decided, 'en', (s) => s).title).toContain("request was approved");
  });

  it('are selected by kind; levels select among budget alerts only', () => {
    expect(channelConfigSchema.safeParse({ type: 'webhook', url: 'https://x.example', kinds: ['request'] }).success).toBe(true);
    expect(channelConfigSchema.safeParse({ type: 'webhook', url: 'https://x.example', kinds: ['nope'] }).success).toBe(false);
    expect(acceptsAlert({ kinds: ['request'] }, request)).toBe(true);
    expect(acceptsAlert({ kinds: ['threshold'] }, request)).toBe(false);
    // Approve links go to a channel that asks for requests by name, never to one that only filters
    // by scope or level (a user's own channel, through which she could approve her own request).
    expect(acceptsAlert({ levels: [100] }, request)).toBe(false);
    expect(acceptsAlert({}, request)).toBe(false);
    expect(acceptsAlert({ scopes: ['user:alice'] }, request)).toBe(false);
    const decided = { ...request, kind: 'request_decided' } as AlertEvent;
    expect(acceptsAlert({ scopes: ['user:alice'] }, decided)).toBe(true);
    expect(acceptsAlert({ levels: [100] }, decided)).toBe(false);
    expect(acceptsAlert({ kinds: ['request'] }, decided)).toBe(false);
    expect(acceptsAlert({ kinds: ['request', 'request_decided'] }, decided)).toBe(true);
    expect(acceptsAlert({ kinds: ['request'] }, { ...request, kind: 'threshold', threshold: 100 })).toBe(false);
    expect(acceptsAlert({ scopes: ['user:bob'] }, request)).toBe(false);
  });
});

describe('request alerts by SMS', () => {
  it('say who asks for how much, or the decision, in one text of either language', async () => {
    const { smsText, smsUnits } = await import('../alerts/channels/sms-text.js');
    expect(smsText(request, 'en')).toBe('lobe-quota: Alice (user:alice) asks for 20,000 tokens more');
    expect(smsText(request, 'zh')).toBe('lobe-quota：Alice（user:alice）申请增加20,000 tokens');
    const approved = { ...request, kind: 'request_decided', links: undefined, request: { ...request.request!, state: 'approved', grantedTokens: 20_000 } } as AlertEvent;
    expect(smsText(approved, 'en')).toBe("lobe-quota: Alice (user:alice)'s request was approved (+20,000 tokens)");
    const denied = { ...approved, request: { ...approved.request!, state: 'denied', grantedTokens: null } } as AlertEvent;
    expect(smsText(denied, 'zh')).toBe('lobe-quota：Alice（user:alice）的额度申请已拒绝');
    for (const alert of [request, approved, denied]) for (const locale of ['en', 'zh'] as const) {
      const { units, max } = smsUnits(smsText(alert, locale));
      expect(units).toBeLessThanOrEqual(max);
    }
  });
});
