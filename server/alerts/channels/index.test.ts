import { describe, expect, it } from 'vitest';
import { anomalyAlert, projectedAlert, thresholdAlert } from './fixtures.test-util.js';
import { acceptsAlert, channelConfigSchema, channelConfigsSchema, createChannels, type ChannelConfig } from './index.js';

const hook = 'https://example.com/hook';

describe('accepts', () => {
  it('takes everything without scopes or levels', () => {
    expect(acceptsAlert({}, thresholdAlert())).toBe(true);
    expect(acceptsAlert({}, projectedAlert())).toBe(true);
  });

  it('filters by exact scope, kind wildcard and global', () => {
    const alice = thresholdAlert({ scope: 'user:alice' });
    const global = thresholdAlert({ scope: 'global' });
    expect(acceptsAlert({ scopes: ['user:alice'] }, alice)).toBe(true);
    expect(acceptsAlert({ scopes: ['user:bob'] }, alice)).toBe(false);
    expect(acceptsAlert({ scopes: ['user:ali'] }, alice)).toBe(false);
    expect(acceptsAlert({ scopes: ['user:*'] }, alice)).toBe(true);
    expect(acceptsAlert({ scopes: ['project:*', 'key:*'] }, alice)).toBe(false);
    expect(acceptsAlert({ scopes: ['global'] }, global)).toBe(true);
    expect(acceptsAlert({ scopes: ['global'] }, alice)).toBe(false);
    expect(acceptsAlert({ scopes: ['user:*'] }, global)).toBe(false);
    expect(acceptsAlert({ scopes: ['project:research', 'global'] }, global)).toBe(true);
  });

  it('filters threshold alerts by level, and lets projections through only with level 0', () => {
    expect(acceptsAlert({ levels: [80, 100] }, thresholdAlert({ threshold: 80 }))).toBe(true);
    expect(acceptsAlert({ levels: [90, 100] }, thresholdAlert({ threshold: 80 }))).toBe(false);
    expect(acceptsAlert({ levels: [100] }, projectedAlert())).toBe(false);
    expect(acceptsAlert({ levels: [0, 100] }, projectedAlert())).toBe(true);
    expect(acceptsAlert({ levels: [0] }, thresholdAlert({ threshold: 80 }))).toBe(false);
  });

  it('treats spike anomalies like projections: level 0', () => {
    expect(acceptsAlert({}, anomalyAlert())).toBe(true);
    expect(acceptsAlert({ levels: [100] }, anomalyAlert())).toBe(false);
    expect(acceptsAlert({ levels: [0] }, anomalyAlert())).toBe(true);
  });

  it('needs both scope and level to match', () => {
    const filter = { scopes: ['project:*'], levels: [0, 100] };
    expect(acceptsAlert(filter, projectedAlert())).toBe(true);
    expect(acceptsAlert(filter, thresholdAlert({ scope: 'project:research', threshold: 100 }))).toBe(true);
    expect(acceptsAlert(filter, thresholdAlert({ scope: 'user:alice', threshold: 100 }))).toBe(false);
  });

  it('is what each channel answers', () => {
    const [all, users] = createChannels(
      [
        { type: 'webhook', url: hook },
        { type: 'slack', url: hook, scopes: ['user:*'], levels: [100] },
      ],
      { locale: 'en' },
    );
    expect(all!.accepts(projectedAlert())).toBe(true);
    expect(users!.accepts(projectedAlert())).toBe(false);
    expect(users!.accepts(thresholdAlert({ threshold: 100 }))).toBe(true);
    expect(users!.accepts(thresholdAlert({ threshold: 80 }))).toBe(false);
  });
});

describe('createChannels', () => {
  it('names channels by config name, else type and index', () => {
    const channels = createChannels(
      [
        { type: 'webhook', url: hook },
        { type: 'dingtalk', url: hook, name: 'ops-dingtalk' },
        { type: 'email', smtp: 'smtp://127.0.0.1:2525', from: 'a@example.com', to: ['b@example.com'] },
      ],
      { locale: 'zh' },
    );
    expect(channels.map((c) => c.name)).toEqual(['webhook:0', 'ops-dingtalk', 'email:2']);
    expect(channels[2]!.close).toBeTypeOf('function');
    expect(channels[0]!.close).toBeUndefined();
    return Promise.all(channels.map((c) => c.close?.()));
  });

  it('refuses two channels with one name', () => {
    expect(() =>
      createChannels(
        [
          { type: 'webhook', url: hook, name: 'slack:1' },
          { type: 'slack', url: hook },
        ],
        { locale: 'en' },
      ),
    ).toThrow('Two alert channels are named "slack:1"');
  });
});

describe('channelConfigSchema', () => {
  const ok = (input: unknown) => channelConfigSchema.parse(input);
  const problems = (input: unknown): string[] => {
    const result = channelConfigSchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts every channel type', () => {
    const configs: ChannelConfig[] = [
      { type: 'webhook', url: hook, secret: 's', name: 'audit', scopes: ['global', 'user:*', 'project:research', 'key:key_abc'], levels: [0, 80, 100] },
      { type: 'slack', url: 'https://hooks.slack.com/services/T/B/X' },
      { type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=abc', secret: 'SECxyz' },
      { type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k' },
      { type: 'feishu', url: 'https://open.feishu.cn/open-apis/bot/v2/hook/h', secret: 's' },
      { type: 'email', smtp: 'smtps://u:p@smtp.example.com:465', from: 'lobe-quota <alerts@example.com>', to: ['ops@example.com'] },
    ];
    for (const config of configs) expect(ok(config)).toEqual(config);
  });

  it('names the field of each problem', () => {
    expect(problems({ type: 'teams', url: hook })[0]).toMatch(/^type: /);
    expect(problems({ type: 'webhook', url: 'not a url' })).toEqual(['url: must be an http:// or https:// URL']);
    expect(problems({ type: 'slack', url: 'ftp://example.com/x' })).toEqual(['url: must be an http:// or https:// URL']);
    expect(problems({ type: 'wecom', url: hook, secret: 'x' })[0]).toMatch(/Unrecognized key.*secret/);
    expect(problems({ type: 'webhook', url: hook, scopes: ['users:*'] })[0]).toMatch(/^scopes\.0: must be "global"/);
    expect(problems({ type: 'webhook', url: hook, scopes: ['user:a b'] })[0]).toMatch(/^scopes\.0: /);
    expect(problems({ type: 'webhook', url: hook, scopes: [] })[0]).toMatch(/^scopes: /);
    expect(problems({ type: 'webhook', url: hook, levels: [80.5] })[0]).toMatch(/^levels\.0: /);
    expect(problems({ type: 'webhook', url: hook, name: '' })[0]).toMatch(/^name: /);
    expect(problems({ type: 'email', smtp: 'smtp://h', from: 'a@example.com', to: [] })[0]).toMatch(/^to: /);
    expect(problems({ type: 'email', smtp: 'smtp://h', from: 'a@example.com', to: ['not-mail'] })[0]).toMatch(/^to\.0: /);
    expect(problems({ type: 'email', smtp: 'smtp://h', from: 'nobody', to: ['a@example.com'] })[0]).toMatch(/^from: must be an e-mail address/);
    expect(problems({ type: 'email', smtp: 'https://h', from: 'a@example.com', to: ['a@example.com'] })).toEqual([
      'smtp: must be an smtp:// or smtps:// URL, not https://',
    ]);
    expect(problems({ type: 'email', smtp: 'smtp://h?pool=true', from: 'a@example.com', to: ['a@example.com'] })[0]).toMatch(/^smtp: unknown option "pool"/);
  });

  it('checks the list for duplicate names', () => {
    const result = channelConfigsSchema.safeParse([
      { type: 'webhook', url: hook },
      { type: 'slack', url: hook, name: 'webhook:0' },
    ]);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['1.name', 'two channels are named "webhook:0"']]);
  });
});
