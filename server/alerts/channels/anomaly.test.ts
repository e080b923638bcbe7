import { describe, expect, it } from 'vitest';
import { buildDingTalkMessage } from './dingtalk.js';
import { buildEmailMessage } from './email.js';
import { buildFeishuMessage } from './feishu.js';
import { anomalyAlert } from './fixtures.test-util.js';
import { buildSlackMessage } from './slack.js';
import { buildWebhookBody } from './webhook.js';
import { buildWeComMessage } from './wecom.js';

const RATIO = '12.5×';

describe('a spike anomaly in every channel', () => {
  it.each([
    ['slack', () => JSON.stringify(buildSlackMessage(anomalyAlert(), 'en'))],
    ['dingtalk', () => JSON.stringify(buildDingTalkMessage(anomalyAlert(), 'en'))],
    ['wecom', () => JSON.stringify(buildWeComMessage(anomalyAlert(), 'en'))],
    ['feishu', () => JSON.stringify(buildFeishuMessage(anomalyAlert(), 'en'))],
    ['email', () => JSON.stringify(buildEmailMessage(anomalyAlert(), 'en'))],
  ])('%s says the last hour against the usual rate', (_, render) => {
    const text = render();
    expect(text).toContain(`usage in the last hour is ${RATIO} the usual hourly rate`);
    expect(text).toContain('2,000 tokens/h');
    // Nothing budget-shaped leaks in: an anomaly has no threshold or reset.
    expect(text).not.toContain('null');
    expect(text).not.toContain('threshold');
  });

  it('webhook: the body carries the kind and the numbers', () => {
    const body = JSON.parse(buildWebhookBody(anomalyAlert())) as Record<string, unknown>;
    expect(body).toMatchObject({
      kind: 'anomaly',
      scope: 'user:alice',
      usage: 25_000,
      limit: 12_000,
      anomaly: { lastHourTokens: 25_000, baselineHourlyTokens: 2_000, ratio: 12.5, baselineHours: 24, factor: 6 },
    });
  });
});
