import { describe, expect, it } from 'vitest';
import { alertLevel, alertSubject, describeAlert, formatAmount, formatInstant } from './alert-text.js';
import { plainText } from './escape.js';
import { anomalyAlert, projectedAlert, thresholdAlert } from './fixtures.test-util.js';

const facts = (text: ReturnType<typeof describeAlert>) => Object.fromEntries(text.facts.map((f) => [f.label, f.value]));

describe('describeAlert', () => {
  it('says who, which budget, how much of what, the reset and the top consumers', () => {
    const text = describeAlert(thresholdAlert(), 'en', plainText);
    expect(text.title).toBe('🟡 Alice (user:alice) reached 80% of the monthly budget');
    expect(facts(text)).toEqual({
      Who: 'Alice (user:alice)',
      Budget: 'monthly, Asia/Shanghai time',
      Usage: '80,400 / 100,000 tokens',
      Used: '80.4% (threshold 80%)',
      Resets: '2026-12-01 00:00 UTC+08:00',
      'Top users': 'alice (80,400 tokens)',
      'Top models': 'gpt-4o-mini (60,000 tokens), gpt-4o (20,400 tokens)',
      'Fired at': '2026-11-22 20:00 UTC+08:00',
    });
    expect(text.footer).toBe('lobe-quota · alert alt_01');
  });

  it('says it in Chinese', () => {
    const text = describeAlert(projectedAlert(), 'zh', plainText);
    expect(text.title).toBe('📈 Research（project:research）的每日预算预计将在重置前用完');
    expect(facts(text)).toEqual({
      对象: 'Research（project:research）',
      预算: '每日（时区 Europe/Berlin）',
      用量: '$31.25 / $50.00',
      已用比例: '62.5%',
      重置时间: '2026-11-23 00:00 UTC+01:00',
      预计用完时间: '2026-11-22 20:30 UTC+01:00',
      用量最多的用户: 'bob（$20.00）、alice（$11.25）',
      用量最多的模型: 'o3（$31.25）',
      触发时间: '2026-11-22 15:00 UTC+01:00',
    });
    expect(text.footer).toBe('lobe-quota · 告警 alt_02');
  });

  it('describes rolling and all-time budgets, which have no calendar reset', () => {
    const rolling = describeAlert(thresholdAlert({ window: { kind: 'rolling', hours: 5 }, resetsAt: null, firedAt: '2026-11-22T12:00:00Z' }), 'en', plainText);
    expect(rolling.title).toBe('🟡 Alice (user:alice) reached 80% of the rolling 5-hour budget');
    expect(facts(rolling)).toMatchObject({
      Budget: 'rolling, the last 5 h',
      Resets: 'gradually, as usage older than 5 h leaves the window',
      'Fired at': '2026-11-22 12:00 UTC',
    });
    const total = describeAlert(thresholdAlert({ window: { kind: 'total' }, resetsAt: null }), 'zh', plainText);
    expect(total.title).toBe('🟡 Alice（user:alice）已用到累计预算的 80%');
    expect(facts(total)).toMatchObject({ 预算: '累计（不重置）', 重置时间: '不重置' });
  });

  it('shows only the scope when the subject has no name of its own', () => {
    expect(facts(describeAlert(thresholdAlert({ scope: 'global', subjectName: 'global' }), 'en', plainText)).Who).toBe('global');
    expect(facts(describeAlert(thresholdAlert({ subjectName: 'alice' }), 'en', plainText)).Who).toBe('user:alice');
    expect(facts(describeAlert(thresholdAlert({ subjectName: '  ' }), 'en', plainText)).Who).toBe('user:alice');
  });

  it('passes user text, and only user text, through the escaper', () => {
    const marked = describeAlert(
      thresholdAlert({ subjectName: 'Ann', topConsumers: [{ kind: 'model', id: 'm', usage: 1 }], window: { kind: 'week', timeZone: 'UTC' } }),
      'en',
      (s) => `⟨${s}⟩`,
    );
    expect(marked.title).toBe('🟡 ⟨Ann⟩ (⟨user:alice⟩) reached 80% of the weekly budget');
    expect(facts(marked)).toMatchObject({ Budget: 'weekly, ⟨UTC⟩ time', 'Top models': '⟨m⟩ (1 tokens)', Usage: '80,400 / 100,000 tokens' });
    expect(marked.footer).toBe('lobe-quota · alert ⟨alt_01⟩');
  });

  it('lists at most five consumers of each kind, largest first', () => {
    const topConsumers = Array.from({ length: 8 }, (_, i) => ({ kind: 'user' as const, id: `u${i}`, usage: i * 10 }));
    expect(facts(describeAlert(thresholdAlert({ topConsumers }), 'en', plainText))['Top users']).toBe(
      'u7 (70 tokens), u6 (60 tokens), u5 (50 tokens), u4 (40 tokens), u3 (30 tokens)',
    );
    expect(facts(describeAlert(thresholdAlert({ topConsumers: [] }), 'en', plainText))).not.toHaveProperty('Top users');
  });
});

describe('alertSubject', () => {
  it('is the one-line summary of DESIGN', () => {
    expect(alertSubject(thresholdAlert(), 'en')).toBe('[lobe-quota] user:alice at 80% of 100,000 tokens (month)');
    expect(alertSubject(thresholdAlert({ window: { kind: 'rolling', hours: 5 } }), 'en')).toBe('[lobe-quota] user:alice at 80% of 100,000 tokens (rolling:5h)');
    expect(alertSubject(projectedAlert(), 'en')).toBe('[lobe-quota] project:research projected to use up $50.00 (day) by 2026-11-22 20:30 UTC+01:00');
    expect(alertSubject(thresholdAlert(), 'zh')).toBe('[lobe-quota] user:alice 已用到 100,000 tokens 的 80%（month）');
  });
});

describe('formatting', () => {
  it('levels follow the status colours; a projection is at least a warning', () => {
    expect(alertLevel(thresholdAlert({ percentage: 50 }))).toBe('notice');
    expect(alertLevel(thresholdAlert({ percentage: 80 }))).toBe('warning');
    expect(alertLevel(thresholdAlert({ percentage: 95.1 }))).toBe('critical');
    expect(alertLevel(thresholdAlert({ percentage: 100 }))).toBe('exceeded');
    expect(alertLevel(projectedAlert({ percentage: 30 }))).toBe('warning');
    expect(alertLevel(projectedAlert({ percentage: 96 }))).toBe('critical');
  });

  it('amounts', () => {
    expect(formatAmount(1_234_567, 'tokens')).toBe('1,234,567 tokens');
    expect(formatAmount(1234.5, 'usd')).toBe('$1,234.50');
    expect(formatAmount(0.0042, 'usd')).toBe('$0.0042');
    expect(formatAmount(0, 'usd')).toBe('$0.00');
  });

  it('instants on the budget\'s wall clock, and unparseable ones escaped as given', () => {
    const month = { kind: 'month', timeZone: 'America/New_York' } as const;
    expect(formatInstant('2026-12-01T05:00:00Z', month, plainText)).toBe('2026-12-01 00:00 UTC-05:00');
    expect(formatInstant('2026-12-01T05:00:00+05:30', { kind: 'total' }, plainText)).toBe('2026-12-01 05:00 UTC+05:30');
    expect(formatInstant('soon<b>', month, (s) => s.replace(/</g, '&lt;'))).toBe('soon&lt;b>');
  });
});

describe('anomaly alerts', () => {
  it('say how far the last hour is above the usual hourly rate', () => {
    const text = describeAlert(anomalyAlert(), 'en', plainText);
    expect(text.level).toBe('warning');
    expect(text.title).toBe('⚡ Alice (user:alice): usage in the last hour is 12.5× the usual hourly rate (baseline 2,000 tokens/h over 24 h)');
    expect(facts(text)).toEqual({
      Who: 'Alice (user:alice)',
      'Last hour': '25,000 tokens',
      'Usual rate': '2,000 tokens/h over the 24 h before',
      'Alerts above': '12,000 tokens (6× the usual rate, or the minimum)',
      'Top users': 'alice (25,000 tokens)',
      'Top models': 'o3 (25,000 tokens)',
      'Fired at': '2026-11-22 12:00 UTC',
    });
    expect(alertSubject(anomalyAlert(), 'en')).toBe('[lobe-quota] user:alice usage spike: 12.5× the usual hourly rate (25,000 tokens in the last hour)');
    expect(alertLevel(anomalyAlert())).toBe('warning');
  });

  it('say it in Chinese, and without a baseline', () => {
    const none = anomalyAlert({ anomaly: { lastHourTokens: 25_000, baselineHourlyTokens: 0, ratio: null, baselineHours: 24, factor: 6 } });
    expect(describeAlert(anomalyAlert(), 'zh', plainText).title).toBe(
      '⚡ Alice（user:alice）最近一小时用量是平时每小时的 12.5×（基线 2,000 tokens/小时，按前 24 小时计）',
    );
    expect(describeAlert(none, 'en', plainText).title).toBe('⚡ Alice (user:alice): 25,000 tokens in the last hour, with no usage in the 24 h before');
    expect(alertSubject(none, 'zh')).toBe('[lobe-quota] user:alice 用量突增：此前没有用量（最近一小时 25,000 tokens）');
  });
});
