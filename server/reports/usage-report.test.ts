import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { localDays } from '../store/sql/local-day.js';
import { testService, type TestService } from '../testing/harness.js';

interface Entry {
  user: string;
  project: string | null;
  model: string;
  at: string;
  input: number;
  output: number;
  costMicros: number;
}

async function seed(svc: TestService, entries: Entry[]) {
  let n = 0;
  for (const e of entries) {
    await svc.store.settle({
      holdId: `r${n++}`,
      subject: { userId: e.user, projectId: e.project, keyId: `key_${e.user}` },
      usage: { model: e.model, inputTokens: e.input, outputTokens: e.output, cachedTokens: 0, reasoningTokens: 0, costMicros: e.costMicros, source: 'upstream', outcome: 'ok', latencyMs: 5, sessionId: null, tags: {} },
      now: Date.parse(e.at),
    });
  }
}

/** Parses the report CSV (no quoted fields in these fixtures) into records keyed by header. */
function parseCsv(text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.trimEnd().split('\r\n').map((l) => l.split(','));
  return lines.map((cells) => Object.fromEntries((header ?? []).map((h, i) => [h, cells[i] ?? ''])));
}

const RANGE = 'from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z';

// Known totals: alice spends $1.250000 + $0.000003 on gpt-4o and $0.666667 on mini; bob $0.333333.
const LEDGER: Entry[] = [
  { user: 'alice', project: 'research', model: 'gpt-4o', at: '2026-11-02T10:00:00Z', input: 100, output: 50, costMicros: 1_250_000 },
  { user: 'alice', project: 'research', model: 'gpt-4o', at: '2026-11-02T11:00:00Z', input: 10, output: 5, costMicros: 3 },
  { user: 'alice', project: 'research', model: 'gpt-4o-mini', at: '2026-11-03T23:30:00Z', input: 7, output: 7, costMicros: 666_667 },
  { user: 'bob', project: null, model: 'gpt-4o', at: '2026-11-03T01:00:00Z', input: 1, output: 1, costMicros: 333_333 },
  { user: 'bob', project: null, model: 'gpt-4o', at: '2026-10-31T23:59:59Z', input: 999, output: 999, costMicros: 999_999 }, // outside the range
];

describe('GET /admin/usage grouped by two dimensions', () => {
  it('crosses user × model: one field per dimension, costliest first, totals exact, CSV equal to the cent', async () => {
    const svc = testService();
    await seed(svc, LEDGER);
    const json = (await (await svc.admin('GET', `/admin/usage?groupBy=user,model&${RANGE}`)).json()) as {
      groupBy: string;
      rows: Array<Record<string, unknown>>;
      totals: Record<string, number>;
    };
    expect(json.groupBy).toBe('user,model');
    expect(json.rows).toEqual([
      { user: 'alice', model: 'gpt-4o', requests: 2, inputTokens: 110, outputTokens: 55, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 165, costUsd: 1.250003, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
      { user: 'alice', model: 'gpt-4o-mini', requests: 1, inputTokens: 7, outputTokens: 7, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 14, costUsd: 0.666667, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
      { user: 'bob', model: 'gpt-4o', requests: 1, inputTokens: 1, outputTokens: 1, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 2, costUsd: 0.333333, cacheHits: 0, savedTokens: 0, savedUsd: 0 },
    ]);
    expect(json.totals).toEqual({ requests: 4, inputTokens: 118, outputTokens: 63, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 181, costUsd: 2.250003, cacheHits: 0, savedTokens: 0, savedUsd: 0 });

    const response = await svc.admin('GET', `/admin/usage?groupBy=user,model&format=csv&${RANGE}`);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="lobe-quota-usage-by-user-model.csv"');
    const csv = await response.text();
    expect(csv.split('\r\n')[0]).toBe('user,model,requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,reasoning_tokens,total_tokens,cost_usd,cache_hits,saved_tokens,saved_usd');
    const records = parseCsv(csv);
    expect(records.map((r) => [r.user, r.model, r.requests, r.cost_usd])).toEqual(
      json.rows.map((r) => [r.user, r.model, String(r.requests), (r.costUsd as number).toFixed(6)]),
    );
    // Summed in whole micro-dollars, the CSV's costs give the JSON total exactly.
    const csvMicros = records.reduce((sum, r) => sum + Number((r.cost_usd ?? '').replace('.', '')), 0);
    expect(csvMicros).toBe(Math.round((json.totals.costUsd ?? Number.NaN) * 1_000_000));
  });

  it('crosses project × day and day × model; a day-first report runs in date order', async () => {
    const svc = testService();
    await seed(svc, LEDGER);
    const byProjectDay = (await (await svc.admin('GET', `/admin/usage?groupBy=project,day&tz=Asia/Shanghai&${RANGE}`)).json()) as { rows: Array<Record<string, unknown>> };
    // In Shanghai alice's 23:30 UTC request is on the 4th; bob has no project.
    expect(byProjectDay.rows.map((r) => [r.project, r.day, r.requests, r.costUsd])).toEqual([
      ['research', '2026-11-02', 2, 1.250003],
      ['research', '2026-11-04', 1, 0.666667],
      ['', '2026-11-03', 1, 0.333333],
    ]);

    const byDayModel = await svc.admin('GET', `/admin/usage?groupBy=day,model&tz=Asia/Shanghai&format=csv&${RANGE}`);
    expect(await byDayModel.text()).toBe(
      'day,model,requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,reasoning_tokens,total_tokens,cost_usd,cache_hits,saved_tokens,saved_usd\r\n' +
        '2026-11-02,gpt-4o,2,110,55,0,0,0,165,1.250003,0,0,0.000000\r\n' +
        '2026-11-03,gpt-4o,1,1,1,0,0,0,2,0.333333,0,0,0.000000\r\n' +
        '2026-11-04,gpt-4o-mini,1,7,7,0,0,0,14,0.666667,0,0,0.000000\r\n',
    );
  });

  it('groups by local day across a DST change (New York falls back on 2026-11-01 at 06:00 UTC)', async () => {
    const svc = testService();
    const at = (iso: string): Entry => ({ user: 'alice', project: null, model: 'm', at: iso, input: 1, output: 0, costMicros: 1 });
    await seed(svc, [
      at('2026-11-01T03:30:00Z'), // 23:30 EDT on Oct 31
      at('2026-11-01T04:30:00Z'), // 00:30 EDT on Nov 1
      at('2026-11-02T04:30:00Z'), // 23:30 EST on Nov 1: one fixed offset would put this on Nov 2
      at('2026-11-02T05:30:00Z'), // 00:30 EST on Nov 2
    ]);
    const range = 'from=2026-10-25T00:00:00Z&to=2026-11-08T00:00:00Z';
    const byDay = (await (await svc.admin('GET', `/admin/usage?groupBy=day,user&tz=America/New_York&${range}`)).json()) as { rows: Array<Record<string, unknown>> };
    expect(byDay.rows.map((r) => [r.day, r.user, r.requests])).toEqual([
      ['2026-10-31', 'alice', 1],
      ['2026-11-01', 'alice', 2],
      ['2026-11-02', 'alice', 1],
    ]);
  });

  it('puts every entry on its local day over years of offset changes, half-hour zones included', async () => {
    const svc = testService();
    const start = Date.parse('2024-01-01T00:00:00Z');
    const entries: Entry[] = [];
    // A deterministic spread of instants over three years, some within minutes of midnight.
    for (let i = 0; i < 400; i++) {
      const at = start + ((i * 7_919_993_171) % (3 * 365 * 86_400_000));
      entries.push({ user: 'u', project: null, model: 'm', at: new Date(at).toISOString(), input: 1, output: 0, costMicros: 0 });
    }
    await seed(svc, entries);
    for (const zone of ['America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Europe/London']) {
      const expected = new Map<string, number>();
      for (const e of entries) {
        const day = DateTime.fromISO(e.at, { zone }).toISODate() as string;
        expected.set(day, (expected.get(day) ?? 0) + 1);
      }
      const from = new Date(start).toISOString();
      const to = new Date(start + 3 * 365 * 86_400_000).toISOString();
      const report = (await (await svc.admin('GET', `/admin/usage?groupBy=day&tz=${zone}&from=${from}&to=${to}`)).json()) as { rows: Array<{ day: string; requests: number }> };
      expect(report.rows.map((r) => [r.day, r.requests]), zone).toEqual([...expected].sort(([a], [b]) => a.localeCompare(b)));
    }
  });
});

describe('localDays', () => {
  it('follows the calendar of the zone: a DST day lasts 23 or 25 hours, and the range clips the ends', () => {
    const days = localDays(Date.parse('2026-03-28T12:00:00Z'), Date.parse('2026-03-30T12:00:00Z'), 'Europe/Berlin');
    expect(days).toEqual([
      { day: '2026-03-28', start: Date.parse('2026-03-28T12:00:00Z'), end: Date.parse('2026-03-28T23:00:00Z') },
      { day: '2026-03-29', start: Date.parse('2026-03-28T23:00:00Z'), end: Date.parse('2026-03-29T22:00:00Z') },
      { day: '2026-03-30', start: Date.parse('2026-03-29T22:00:00Z'), end: Date.parse('2026-03-30T12:00:00Z') },
    ]);
  });
});
