import { describe, expect, it } from 'vitest';
import { maintenancePass } from './maintenance.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import { T0, testConfig, userWithKey } from './testing/harness.js';
import type { Usage } from './store/types.js';

const DAY = 86_400_000;
const usage = (inputTokens: number): Usage => ({
  model: 'gpt-4o-mini',
  inputTokens,
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

describe('maintenancePass (fixed clock)', () => {
  it('raises spike alerts and applies retention as configured', async () => {
    const store = SqliteStore.open({ file: ':memory:', defaultBudgets: [], defaultThresholds: [] });
    const { subject } = await userWithKey(store, 'alice');
    await store.settle({ holdId: 'old', subject, usage: usage(500), now: T0 - 100 * DAY });
    await store.settle({ holdId: 'burst', subject, usage: usage(50_000), now: T0 - 60_000 });

    const config = testConfig();
    expect(config.retention.ledgerDays).toBeNull(); // the default keeps everything
    expect(await maintenancePass(store, config, T0)).toEqual({ anomalies: 2, rolledUp: 0 }); // user and key

    const keepNinety = { ...config, retention: { ledgerDays: 90 } };
    expect(await maintenancePass(store, keepNinety, T0 + 60_000)).toEqual({ anomalies: 0, rolledUp: 1 });
    expect((await store.recentEntries(10)).map((e) => e.requestId)).toEqual(['burst']);

    const off = { ...keepNinety, alerts: { ...config.alerts, spike: { ...config.alerts.spike, enabled: false } } };
    expect(await maintenancePass(store, off, T0 + 2 * 3_600_000 - 60_000)).toEqual({ anomalies: 0, rolledUp: 0 });
    await store.close();
  });
});
