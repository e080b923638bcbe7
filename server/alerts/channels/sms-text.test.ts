import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../alert-event.js';
import { anomalyAlert, overrunAlert, projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { maskPhoneNumbers, smsTemplateParams, smsText, smsUnits, TEMPLATE_PARAM_MAX } from './sms-text.js';

/** The longest ids the config and the store accept (subject ids are at most 200 characters). */
const LONG_ID = 'a'.repeat(200);
const LONG_NAME = 'Department of Extremely Long Names and Subdivisions, Research Operations Group '.repeat(3);

const oneSegment = (text: string) => {
  const { units, max } = smsUnits(text);
  expect(units).toBeLessThanOrEqual(max);
  expect(text).not.toMatch(/[\r\n]/);
};

describe('smsUnits', () => {
  it('counts GSM-7 septets (extension characters twice) and falls back to UCS-2 code units', () => {
    expect(smsUnits('Alice at 100% $5.00')).toEqual({ encoding: 'gsm7', units: 19, max: 160 });
    expect(smsUnits('[x]')).toEqual({ encoding: 'gsm7', units: 5, max: 160 });
    expect(smsUnits('已用到')).toEqual({ encoding: 'ucs2', units: 3, max: 70 });
    // One Chinese name makes the English text UCS-2; an emoji is two UTF-16 units.
    expect(smsUnits('张 reached 80%')).toMatchObject({ encoding: 'ucs2', units: 13 });
    expect(smsUnits('🔴')).toMatchObject({ encoding: 'ucs2', units: 2 });
  });
});

describe('smsText', () => {
  it('says each kind on one line in English', () => {
    expect(smsText(thresholdAlert({ threshold: 100, percentage: 100.4, usage: 100_400 }), 'en')).toBe(
      'lobe-quota: Alice (user:alice) reached 100% of the monthly budget (100,400 / 100,000 tokens)',
    );
    expect(smsText(projectedAlert(), 'en')).toBe('lobe-quota: Research (project:research) will use up the daily budget before it resets ($31.25 / $50.00)');
    expect(smsText(anomalyAlert(), 'en')).toBe('lobe-quota: Alice (user:alice) used 25,000 tokens in the last hour, 12.5x the usual rate');
    expect(smsText(overrunAlert(), 'en')).toBe('lobe-quota: gpt-4o charged 5,000 output tokens where 1,000 were allowed, for Alice (user:alice)');
  });

  it('says each kind in Chinese within 70 characters', () => {
    const texts = [thresholdAlert({ threshold: 100 }), projectedAlert(), anomalyAlert(), overrunAlert()].map((a) => smsText(a, 'zh'));
    expect(texts[0]).toBe('lobe-quota：Alice（user:alice）已用到每月预算的100%（80,400 / 100,000 tokens）');
    expect(texts[2]).toBe('lobe-quota：Alice（user:alice）最近一小时用量25,000 tokens，是平时的12.5x');
    texts.forEach(oneSegment);
  });

  it('writes a generic line for a kind it does not know (one added after it, by an older text module)', () => {
    const future = { ...thresholdAlert(), kind: 'audit', threshold: null, percentage: 100 } as unknown as AlertEvent;
    expect(smsText(future, 'en')).toBe('lobe-quota: audit alert for Alice (user:alice) (100%)');
    expect(smsText(future, 'zh')).toBe('lobe-quota：Alice（user:alice）的audit告警（100%）');
  });

  it('keeps the longest names within one segment: the name goes first, then the scope is cut with an ellipsis', () => {
    const long = thresholdAlert({ scope: `user:${LONG_ID}`, subjectName: LONG_NAME, threshold: 100 });
    const en = smsText(long, 'en');
    oneSegment(en);
    expect(en).toMatch(/^lobe-quota: user:a+\.\.\. reached 100% of the monthly budget \(80,400 \/ 100,000 tokens\)$/);
    expect(en.length).toBeGreaterThan(150); // cut to fit, not to nothing
    const zh = smsText(long, 'zh');
    oneSegment(zh);
    expect(zh).toMatch(/^lobe-quota：user:a+…已用到每月预算的100%（80,400 \/ 100,000 tokens）$/);
    expect(zh.length).toBe(70);

    // A short scope keeps a long name out, rather than cutting it.
    expect(smsText(thresholdAlert({ subjectName: LONG_NAME }), 'en')).toBe('lobe-quota: user:alice reached 80% of the monthly budget (80,400 / 100,000 tokens)');
  });

  it('fits every kind with the longest scope, name and model, in both languages', () => {
    const over = { scope: `project:${LONG_ID}`, subjectName: LONG_NAME };
    const alerts = [
      thresholdAlert(over),
      projectedAlert(over),
      anomalyAlert({ ...over, anomaly: { lastHourTokens: 9_999_999_999, baselineHourlyTokens: 1, ratio: 9_999_999_999, baselineHours: 24, factor: 5 } }),
      overrunAlert({ ...over, overrun: { ...overrunAlert().overrun!, model: `vendor/${'m'.repeat(200)}` } }),
      { ...thresholdAlert(over), kind: 'a-kind-with-a-very-long-name-from-the-future' } as unknown as AlertEvent,
    ];
    for (const alert of alerts) {
      oneSegment(smsText(alert, 'en'));
      oneSegment(smsText(alert, 'zh'));
    }
  });

  it('drops to 70 units when an English text names someone in Chinese, and cuts with "..." to stay GSM-7 otherwise', () => {
    const chinese = smsText(thresholdAlert({ subjectName: '研究部门的张三'.repeat(10), scope: `user:${'z'.repeat(100)}` }), 'en');
    oneSegment(chinese);
    expect(smsUnits(chinese).encoding).toBe('gsm7'); // the Chinese name went first
    const cut = smsText(thresholdAlert({ scope: `user:${LONG_ID}` }), 'en');
    expect(smsUnits(cut)).toMatchObject({ encoding: 'gsm7' });
    expect(cut).toContain('...');
  });

  it('folds control characters in names onto one line', () => {
    expect(smsText(thresholdAlert({ subjectName: 'Al\nice\r\u2028x' }), 'en')).toMatch(/^lobe-quota: Al ice x \(user:alice\) reached/);
  });
});

describe('smsTemplateParams', () => {
  it('fills scope, name, kind, percent and usage, each short', () => {
    expect(smsTemplateParams(thresholdAlert({ threshold: 100 }), 'zh')).toEqual({
      scope: 'user:alice',
      name: 'Alice',
      kind: '阈值',
      percent: '100%',
      usage: '80,400/100,000',
    });
    expect(smsTemplateParams(projectedAlert(), 'en')).toMatchObject({ kind: 'projected', percent: '62.5%', usage: '$31.25/$50.00' });
    expect(smsTemplateParams(anomalyAlert(), 'zh').kind).toBe('用量突增');
    expect(smsTemplateParams(overrunAlert(), 'en').kind).toBe('overrun');
    const request = { ...thresholdAlert(), kind: 'request', threshold: null } as unknown as AlertEvent;
    expect(smsTemplateParams(request, 'zh').kind).toBe('request');
    const long = smsTemplateParams(thresholdAlert({ scope: `user:${LONG_ID}`, subjectName: LONG_NAME }), 'en');
    for (const value of Object.values(long)) expect([...value].length).toBeLessThanOrEqual(TEMPLATE_PARAM_MAX);
    expect(long.scope).toBe(`user:${'a'.repeat(14)}…`);
  });
});

describe('maskPhoneNumbers', () => {
  it('stars all but the last 4 digits of every number, with or without "+"', () => {
    expect(maskPhoneNumbers("The 'To' number +15005550001 is not a valid phone number.")).toBe("The 'To' number +*******0001 is not a valid phone number.");
    expect(maskPhoneNumbers('PhoneNumbers%3D13800138000%252C8613900139000')).toBe('PhoneNumbers%3D*******8000%252C*********9000');
    expect(maskPhoneNumbers('to 13800138000,+8613900139000')).toBe('to *******8000,+*********9000');
  });

  it('leaves short numbers, dates, codes and hosts alone', () => {
    const text = 'twilio: HTTP 400, error 21211 at 2026-11-22 12:00 from 127.0.0.1:8080 (sent to 2 of 3)';
    expect(maskPhoneNumbers(text)).toBe(text);
  });
});
