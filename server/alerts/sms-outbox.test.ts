import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { DefaultBudget } from '../config/schema.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Usage } from '../store/types.js';
import { T0, userWithKey } from '../testing/harness.js';
import { AlertSender } from './alert-sender.js';
import { createChannels } from './channels/index.js';
import { ALIYUN_KEY_ID, ALIYUN_SECRET, aliyunSignatureValid, startAliyun, startTwilio, TWILIO_SID, TWILIO_TOKEN } from './channels/sms-receivers.test-util.js';

const monthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 1_000, limitUsd: null, onLimit: 'reject' };

const usage = (tokens: number): Usage => ({
  model: 'gpt-4o-mini',
  inputTokens: tokens,
  outputTokens: 0,
  cachedTokens: 0,
  reasoningTokens: 0,
  costMicros: 0,
  source: 'upstream',
  outcome: 'ok',
  latencyMs: 1,
  sessionId: null,
  tags: {},
});

describe('SMS through the outbox', () => {
  it('only the 100 % alert goes by SMS; a failure is stored masked and retried until Twilio and Alibaba Cloud take it', async () => {
    const clock = new ManualClock(T0);
    const twilio = await startTwilio();
    const aliyun = await startAliyun(T0);
    try {
      const channels = createChannels(
        [
          { type: 'twilio', name: 'oncall-sms', accountSid: TWILIO_SID, authTokenEnv: 'TWILIO_AUTH_TOKEN', from: '+15005550006', to: ['+8613800138000'], baseUrl: twilio.url(''), levels: [100] },
          {
            type: 'aliyun-sms',
            name: 'oncall-aliyun',
            accessKeyId: ALIYUN_KEY_ID,
            accessKeySecretEnv: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
            signName: 'lobe-quota',
            templateCode: 'SMS_154950909',
            to: ['13900139000'],
            regionId: 'cn-hangzhou',
            endpoint: aliyun.url(''),
            levels: [100],
          },
        ],
        { locale: 'en', now: () => clock.now(), env: { TWILIO_AUTH_TOKEN: TWILIO_TOKEN, ALIBABA_CLOUD_ACCESS_KEY_SECRET: ALIYUN_SECRET } },
      );
      const store = SqliteStore.open({
        file: ':memory:',
        defaultBudgets: [monthly],
        defaultThresholds: [50, 80, 100],
        alerts: { channelsFor: (alert) => channels.filter((c) => c.accepts(alert)).map((c) => c.name), projection: false },
      });
      const { subject } = await userWithKey(store, 'alice');
      // Both vendors are down, and say so quoting the number.
      twilio.answer = { status: 503, body: { code: 20503, message: 'Service unavailable for +8613800138000', status: 503 } };
      aliyun.answer = { status: 200, body: { Code: 'isv.BUSINESS_LIMIT_CONTROL', Message: 'limit for 13900139000' } };

      await store.settle({ holdId: 'r1', subject, usage: usage(1_000), now: T0 });
      const sender = new AlertSender({ store, channels, clock, baseDelayMs: 1_000 });
      expect(await sender.deliverDue()).toBe(0);
      const [record] = await store.listAlerts({ threshold: 100, limit: 1 });
      expect(record?.deliveries.map((d) => [d.channel, d.state, d.lastError])).toEqual([
        ['oncall-aliyun', 'pending', 'aliyun-sms: HTTP 200, Code isv.BUSINESS_LIMIT_CONTROL: limit for *******9000'],
        ['oncall-sms', 'pending', 'to +*********8000: twilio: HTTP 503, error 20503: Service unavailable for +*********8000'],
      ]);
      // The 50 % and 80 % alerts were never meant for SMS.
      expect((await store.listAlerts({ limit: 10 })).filter((a) => a.deliveries.length > 0).map((a) => a.alert.threshold)).toEqual([100]);

      twilio.answer = { status: 201, body: { sid: 'SM1', status: 'queued' } };
      aliyun.answer = { status: 200, body: { Code: 'OK', Message: 'OK' } };
      clock.advance(1_000);
      expect(await sender.deliverDue()).toBe(2);
      expect(await sender.deliverDue()).toBe(0);
      expect(twilio.requests).toHaveLength(2);
      expect(aliyun.requests).toHaveLength(2);
      expect(aliyunSignatureValid(aliyun.requests[1]!, ALIYUN_SECRET)).toBe(true);
      expect(new URLSearchParams(twilio.requests[1]!.rawBody.toString('utf8')).get('Body')).toBe(
        'lobe-quota: ALICE (user:alice) reached 100% of the monthly budget (1,000 / 1,000 tokens)',
      );
      const [done] = await store.listAlerts({ threshold: 100, limit: 1 });
      expect(done?.deliveries.map((d) => [d.channel, d.state, d.attempts])).toEqual([
        ['oncall-aliyun', 'delivered', 2],
        ['oncall-sms', 'delivered', 2],
      ]);
      await store.close();
    } finally {
      await twilio.close();
      await aliyun.close();
    }
  });

  it('masks phone numbers in any channel\'s error before the outbox stores it', async () => {
    const clock = new ManualClock(T0);
    const store = SqliteStore.open({ file: ':memory:', defaultBudgets: [monthly], defaultThresholds: [100], alerts: { channelsFor: () => ['leaky'], projection: false } });
    const { subject } = await userWithKey(store, 'alice');
    await store.settle({ holdId: 'r1', subject, usage: usage(1_000), now: T0 });
    const leaky = {
      name: 'leaky',
      send: () => Promise.reject(new Error('gateway refused +4915112345678 at 2026-11-22 (code 21610)')),
    };
    await new AlertSender({ store, channels: [leaky], clock }).deliverDue();
    const [record] = await store.listAlerts({ limit: 1 });
    expect(record?.deliveries[0]?.lastError).toBe('gateway refused +*********5678 at 2026-11-22 (code 21610)');
    await store.close();
  });
});
