import { describe, expect, it } from 'vitest';
import { alertLevel, alertSubject, describeAlert } from './alert-text.js';
import { buildDingTalkMessage } from './dingtalk.js';
import { buildEmailMessage } from './email.js';
import { plainText } from './escape.js';
import { buildFeishuMessage } from './feishu.js';
import { overrunAlert } from './fixtures.test-util.js';
import { acceptsAlert } from './index.js';
import { buildSlackMessage } from './slack.js';
import { buildWebhookBody } from './webhook.js';
import { buildWeComMessage } from './wecom.js';

const facts = (text: ReturnType<typeof describeAlert>) => Object.fromEntries(text.facts.map((f) => [f.label, f.value]));

describe('an overrun alert', () => {
  it('says which model charged how much more than allowed, for whom', () => {
    const text = describeAlert(overrunAlert(), 'en', plainText);
    expect(text.level).toBe('critical');
    expect(text.title).toBe('💸 gpt-4o charged 5,000 output tokens where 1,000 were allowed (4,000 more), for Alice (user:alice)');
    expect(facts(text)).toEqual({
      Who: 'Alice (user:alice)',
      Model: 'gpt-4o',
      'Output allowed': '1,000 tokens',
      'Output charged': '5,000 tokens',
      'Over by': '4,000 tokens',
      Key: 'key_laptop',
      Request: 'req_019ab',
      'Fired at': '2026-11-22 12:00 UTC',
    });
    expect(text.footer).toBe('lobe-quota · alert alt_04');
    expect(alertSubject(overrunAlert(), 'en')).toBe('[lobe-quota] gpt-4o charged 5,000 output tokens where 1,000 were allowed (user:alice)');
    expect(alertLevel(overrunAlert())).toBe('critical');
  });

  it('says it in Chinese', () => {
    const text = describeAlert(overrunAlert(), 'zh', plainText);
    expect(text.title).toBe('💸 gpt-4o 为Alice（user:alice）计费 5,000 个输出 token，超出允许的 1,000 个（多 4,000 个）');
    expect(facts(text)).toEqual({
      对象: 'Alice（user:alice）',
      模型: 'gpt-4o',
      允许的输出: '1,000 tokens',
      计费的输出: '5,000 tokens',
      超出: '4,000 tokens',
      密钥: 'key_laptop',
      请求: 'req_019ab',
      触发时间: '2026-11-22 12:00 UTC',
    });
    expect(text.footer).toBe('lobe-quota · 告警 alt_04');
    expect(alertSubject(overrunAlert(), 'zh')).toBe('[lobe-quota] gpt-4o 计费 5,000 个输出 token，仅允许 1,000 个（user:alice）');
  });

  it('passes the model, key and request ids through the escaper', () => {
    const marked = describeAlert(overrunAlert(), 'en', (s) => `⟨${s}⟩`);
    expect(marked.title).toBe('💸 ⟨gpt-4o⟩ charged 5,000 output tokens where 1,000 were allowed (4,000 more), for ⟨Alice⟩ (⟨user:alice⟩)');
    expect(facts(marked)).toMatchObject({ Model: '⟨gpt-4o⟩', Key: '⟨key_laptop⟩', Request: '⟨req_019ab⟩', 'Output charged': '5,000 tokens' });
  });

  it.each([
    ['slack', (locale: 'en' | 'zh') => JSON.stringify(buildSlackMessage(overrunAlert(), locale))],
    ['dingtalk', (locale: 'en' | 'zh') => JSON.stringify(buildDingTalkMessage(overrunAlert(), locale))],
    ['wecom', (locale: 'en' | 'zh') => JSON.stringify(buildWeComMessage(overrunAlert(), locale))],
    ['feishu', (locale: 'en' | 'zh') => JSON.stringify(buildFeishuMessage(overrunAlert(), locale))],
    ['email', (locale: 'en' | 'zh') => JSON.stringify(buildEmailMessage(overrunAlert(), locale))],
  ])('%s says it in English and Chinese, with nothing budget-shaped', (_, render) => {
    const en = render('en');
    expect(en).toContain('charged 5,000 output tokens where 1,000 were allowed (4,000 more), for Alice');
    expect(en).toContain('key_laptop');
    expect(en).not.toContain('null');
    expect(en).not.toContain('threshold');
    expect(en).not.toContain('Resets');
    expect(render('zh')).toContain('计费 5,000 个输出 token，超出允许的 1,000 个（多 4,000 个）');
  });

  it('webhook: the body carries kind "overrun" and the overrun object', () => {
    const body = JSON.parse(buildWebhookBody(overrunAlert())) as Record<string, unknown>;
    expect(body).toMatchObject({
      kind: 'overrun',
      scope: 'user:alice',
      usage: 5_000,
      limit: 1_000,
      unit: 'tokens',
      threshold: null,
      overrun: { requestId: 'req_019ab', model: 'gpt-4o', userId: 'alice', keyId: 'key_laptop', allowedOutputTokens: 1_000, chargedOutputTokens: 5_000 },
    });
    expect(body).not.toHaveProperty('anomaly');
  });

  it('passes a channel’s levels filter as level 0, like projections and anomalies', () => {
    expect(acceptsAlert({ levels: [0] }, overrunAlert())).toBe(true);
    expect(acceptsAlert({ levels: [80, 100] }, overrunAlert())).toBe(false);
    expect(acceptsAlert({ scopes: ['user:*'] }, overrunAlert())).toBe(true);
    expect(acceptsAlert({ scopes: ['global'] }, overrunAlert())).toBe(false);
  });
});
