import type { AlertEvent } from '../alert-event.js';

/** Alice's monthly token budget in Shanghai, just past 80 %. */
export const thresholdAlert = (over: Partial<AlertEvent> = {}): AlertEvent => ({
  id: 'alt_01',
  kind: 'threshold',
  scope: 'user:alice',
  subjectName: 'Alice',
  window: { kind: 'month', timeZone: 'Asia/Shanghai' },
  threshold: 80,
  percentage: 80.4,
  usage: 80_400,
  limit: 100_000,
  unit: 'tokens',
  resetsAt: '2026-12-01T00:00:00+08:00',
  firedAt: '2026-11-22T12:00:00.000Z',
  projectedAt: null,
  topConsumers: [
    { kind: 'user', id: 'alice', usage: 80_400 },
    { kind: 'model', id: 'gpt-4o-mini', usage: 60_000 },
    { kind: 'model', id: 'gpt-4o', usage: 20_400 },
  ],
  ...over,
});

/** The research project's daily dollar budget, projected to run out before midnight in Berlin. */
export const projectedAlert = (over: Partial<AlertEvent> = {}): AlertEvent => ({
  id: 'alt_02',
  kind: 'projected',
  scope: 'project:research',
  subjectName: 'Research',
  window: { kind: 'day', timeZone: 'Europe/Berlin' },
  threshold: null,
  percentage: 62.5,
  usage: 31.25,
  limit: 50,
  unit: 'usd',
  resetsAt: '2026-11-23T00:00:00+01:00',
  firedAt: '2026-11-22T14:00:00.000Z',
  projectedAt: '2026-11-22T19:30:00.000Z',
  topConsumers: [
    { kind: 'user', id: 'bob', usage: 20 },
    { kind: 'user', id: 'alice', usage: 11.25 },
    { kind: 'model', id: 'o3', usage: 31.25 },
  ],
  ...over,
});

/** A fixed instant for signing timestamps: 2026-11-22T12:00:00.123Z. */
export const NOW_MS = Date.parse('2026-11-22T12:00:00.123Z');

/** Alice's last hour at 12.5× her usual rate. */
export const anomalyAlert = (over: Partial<AlertEvent> = {}): AlertEvent => ({
  id: 'alt_03',
  kind: 'anomaly',
  scope: 'user:alice',
  subjectName: 'Alice',
  window: { kind: 'rolling', hours: 1 },
  threshold: null,
  percentage: 208.3,
  usage: 25_000,
  limit: 12_000,
  unit: 'tokens',
  resetsAt: null,
  firedAt: '2026-11-22T12:00:00.000Z',
  projectedAt: null,
  topConsumers: [
    { kind: 'user', id: 'alice', usage: 25_000 },
    { kind: 'model', id: 'o3', usage: 25_000 },
  ],
  anomaly: { lastHourTokens: 25_000, baselineHourlyTokens: 2_000, ratio: 12.5, baselineHours: 24, factor: 6 },
  ...over,
});

/** gpt-4o ignored Alice's 1,000-token limit and charged 5,000. */
export const overrunAlert = (over: Partial<AlertEvent> = {}): AlertEvent => ({
  id: 'alt_04',
  kind: 'overrun',
  scope: 'user:alice',
  subjectName: 'Alice',
  window: { kind: 'rolling', hours: 1 },
  threshold: null,
  percentage: 500,
  usage: 5_000,
  limit: 1_000,
  unit: 'tokens',
  resetsAt: null,
  firedAt: '2026-11-22T12:00:00.000Z',
  projectedAt: null,
  topConsumers: [],
  overrun: { requestId: 'req_019ab', model: 'gpt-4o', userId: 'alice', keyId: 'key_laptop', allowedOutputTokens: 1_000, chargedOutputTokens: 5_000 },
  ...over,
});
