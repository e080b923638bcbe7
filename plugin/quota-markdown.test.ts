import { describe, expect, it } from 'vitest';
import type { BudgetStatus, QuotaStatus } from '../server/quota/status-report.js';
import { T0, testService, userWithKey } from '../server/testing/harness.js';
import { escapeMarkdown, progressBar, quotaMarkdown, relativeTime } from './quota-markdown.js';
import { monthly, NOW, statusOf } from './quota-status.test-util.js';

const dailyUsd = (over: Partial<BudgetStatus> = {}): BudgetStatus =>
  monthly({
    id: 'config:project:research|day',
    scope: 'project:research',
    window: { kind: 'day', timeZone: 'UTC' },
    usedTokens: 2_000,
    limitTokens: null,
    remainingTokens: null,
    usedUsd: 9.6,
    limitUsd: 10,
    remainingUsd: 0.4,
    percentage: 96,
    status: 'critical',
    resetsAt: '2026-11-23T00:00:00Z',
    ...over,
  });

/** Cells of a Markdown table row, split on pipes that are not escaped. */
const cells = (row: string): string[] => row.replace(/^\| | \|$/g, '').split(/ (?<!\\)\| /);

describe('quotaMarkdown', () => {
  const cases: Array<{ name: string; status: QuotaStatus; locale?: 'en' | 'zh'; expected: string[]; absent?: string[] }> = [
    {
      name: 'normal, tokens, monthly in a time zone',
      status: statusOf(monthly()),
      expected: [
        '### Quota for Alice',
        '███████████████░░░░░ 78.5 %',
        '- **Used:** 78,500 of 100,000 tokens',
        '- **Remaining:** 21,500 tokens',
        '- **Spent:** \\$1.23',
        '- **Status:** 🟢 Normal',
        // 2026-12-01T00:00+08:00 is 2026-11-30T16:00Z: 8 days 4 h after NOW.
        '- **Resets:** 2026-12-01T00:00:00+08:00 (in 8 days 4 h)',
        '- **Budget:** user:alice · monthly (Asia/Shanghai)',
      ],
      absent: ['Other budgets', '|'],
    },
    {
      name: 'warning',
      status: statusOf(monthly({ usedTokens: 85_000, remainingTokens: 15_000, percentage: 85, status: 'warning' })),
      expected: ['█████████████████░░░ 85.0 %', '- **Used:** 85,000 of 100,000 tokens', '- **Status:** 🟡 Warning: running low'],
    },
    {
      name: 'critical, in dollars, with a token budget listed below',
      status: statusOf(dailyUsd(), [monthly()]),
      expected: [
        '███████████████████░ 96.0 %',
        '- **Used:** \\$9.60 of \\$10.00',
        '- **Remaining:** \\$0.40',
        '- **Status:** 🟠 Critical: almost used up',
        '- **Resets:** 2026-11-23T00:00:00Z (in 12 h)',
        '- **Budget:** project:research · daily (UTC)',
        '**Other budgets that apply**',
        '| Scope | Window | Used | Limit | % | Status | Resets |',
        '| user:alice | monthly (Asia/Shanghai) | 78,500 tokens | 100,000 tokens | 78.5 % | 🟢 normal | 2026-12-01T00:00:00+08:00 |',
      ],
      // Dollars are the binding unit: no separate "spent" line.
      absent: ['Spent', '| project:research'],
    },
    {
      name: 'exceeded: the bar stays full past 100 %',
      status: statusOf(monthly({ usedTokens: 120_000, remainingTokens: 0, percentage: 120, status: 'exceeded' })),
      expected: ['████████████████████ 120.0 %', '- **Remaining:** 0 tokens', '- **Status:** 🔴 Exceeded: the limit is used up'],
    },
    {
      name: 'rolling window: no fixed reset',
      status: statusOf(
        monthly({ id: 'admin:key:k|rolling:5h', scope: 'key:key_4f9a', window: { kind: 'rolling', hours: 5 }, limitTokens: 20_000, usedTokens: 5_000, remainingTokens: 15_000, percentage: 25, resetsAt: null }),
      ),
      expected: ['█████░░░░░░░░░░░░░░░ 25.0 %', '- **Resets:** gradually, as usage older than 5 h leaves the window', '- **Budget:** key:key\\_4f9a · rolling 5 h'],
    },
    {
      name: 'all-time window',
      status: statusOf(monthly({ scope: 'global', window: { kind: 'total' }, resetsAt: null })),
      expected: ['- **Resets:** never (an all-time budget)', '- **Budget:** global · all time'],
    },
    {
      name: 'reservations of running requests are named',
      status: statusOf(monthly({ usedTokens: 0, reservedTokens: 30_000, remainingTokens: 70_000, usedUsd: 0, percentage: 0 })),
      expected: ['░░░░░░░░░░░░░░░░░░░░ 0.0 %', '- **Remaining:** 70,000 tokens (30,000 tokens held by requests in flight)'],
      absent: ['Spent'],
    },
    {
      name: 'what requests in flight hold is named for the other budgets too',
      status: statusOf(dailyUsd({ reservedUsd: 0.25 }), [monthly({ reservedTokens: 12_000 })]),
      expected: [
        '- **Remaining:** \\$0.40 (\\$0.25 held by requests in flight)',
        '| user:alice | monthly (Asia/Shanghai) | 78,500 tokens (12,000 tokens held by requests in flight) | 100,000 tokens |',
      ],
    },
    {
      name: 'Chinese: held by requests in flight',
      status: statusOf(dailyUsd({ reservedUsd: 0.25 }), [monthly({ reservedTokens: 12_000 })]),
      locale: 'zh',
      expected: ['- **剩余：** \\$0.40（另有 \\$0.25 被进行中的请求占用）', '| user:alice | 每月 (Asia/Shanghai) | 78,500 tokens（另有 12,000 tokens 被进行中的请求占用） | 100,000 tokens |'],
    },
    {
      name: 'no budgets',
      status: statusOf(null),
      expected: ['### Quota for Alice', 'No budget applies to you: your usage is not limited.'],
      absent: ['█', '░', 'Used', '|'],
    },
    {
      name: 'a budget with tokens and dollars in the table; fractions of a cent',
      status: statusOf(dailyUsd(), [
        monthly({ scope: 'global', window: { kind: 'week', timeZone: 'Europe/Berlin' }, usedUsd: 0.0042, limitUsd: 5, percentage: 78.5 }),
      ]),
      expected: ['| global | weekly (Europe/Berlin) | 78,500 tokens · \\$0.0042 | 100,000 tokens · \\$5.00 | 78.5 % | 🟢 normal |'],
    },
    {
      name: 'Chinese',
      status: statusOf(dailyUsd(), [monthly({ window: { kind: 'rolling', hours: 5 }, resetsAt: null })]),
      locale: 'zh',
      expected: [
        '### Alice 的额度',
        '███████████████████░ 96.0 %',
        '- **已用：** \\$9.60 / \\$10.00',
        '- **剩余：** \\$0.40',
        '- **状态：** 🟠 紧张：即将用完',
        '- **重置：** 2026-11-23T00:00:00Z（12 小时后）',
        '- **预算：** project:research · 每日 (UTC)',
        '**其他适用的预算**',
        '| 范围 | 周期 | 已用 | 上限 | 占比 | 状态 | 重置 |',
        '| user:alice | 滚动 5 小时 | 78,500 tokens | 100,000 tokens | 78.5 % | 🟢 正常 | 逐步释放：超过 5 小时的用量移出窗口 |',
      ],
    },
    {
      name: 'Chinese, no budgets',
      status: statusOf(null),
      locale: 'zh',
      expected: ['当前没有适用于你的预算，用量不受限制。'],
    },
  ];

  it.each(cases)('$name', ({ status, locale, expected, absent = [] }) => {
    const text = quotaMarkdown(status, { now: NOW, ...(locale ? { locale } : {}) });
    const lines = text.split('\n');
    for (const line of expected) {
      // List items and headings must be whole lines; bars and table rows may be partial.
      if (/^(- |### |\*\*)/.test(line)) expect(lines).toContain(line);
      else expect(text).toContain(line);
    }
    for (const fragment of absent) expect(text).not.toContain(fragment);
  });

  it('keeps table rows at seven cells and lists the binding budget only above the table', () => {
    const text = quotaMarkdown(statusOf(dailyUsd(), [monthly(), monthly({ scope: 'global', window: { kind: 'total' }, resetsAt: null })]), { now: NOW });
    const rows = text.split('\n').filter((l) => l.startsWith('|'));
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(cells(row)).toHaveLength(7);
    expect(rows.map((r) => cells(r)[0])).toEqual(['Scope', '---', 'user:alice', 'global']);
  });

  it('defaults `now` to the current time', () => {
    const soon = new Date(Date.now() + 2 * 3_600_000 + 30 * 60_000).toISOString();
    expect(quotaMarkdown(statusOf(monthly({ resetsAt: soon })))).toMatch(/\(in 2 h (29|30) min\)/);
  });
});

describe('quotaMarkdown of a budget that requests in flight hold whole (from GET /quota)', () => {
  it.each<['en' | 'zh', string[]]>([
    ['en', ['- **Remaining:** 0 tokens (100,000 tokens held by requests in flight)', '- **Status:** 🟠 Critical: almost used up', '░░░░░░░░░░░░░░░░░░░░ 0.0 %']],
    ['zh', ['- **剩余：** 0 tokens（另有 100,000 tokens 被进行中的请求占用）', '- **状态：** 🟠 紧张：即将用完']],
  ])('%s', async (locale, expected) => {
    const svc = testService({ defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' }] });
    const alice = await userWithKey(svc.store, 'alice');
    await svc.store.reserve({ holdId: 'live', subject: alice.subject, quote: { tokens: 100_000, micros: 0 }, now: T0, ttlMs: 60_000 });
    const status = (await (await svc.as(alice.secret, '/quota')).json()) as QuotaStatus;
    const lines = quotaMarkdown(status, { now: T0, locale }).split('\n');
    for (const line of expected) expect(lines).toContain(line);
  });
});

describe('escaping what users and admins typed', () => {
  const hostile = 'Eve | `rm -rf` **x** _y_ ~~z~~ [link](http://evil.example) ![i](x) <img src=x onerror=alert(1)> &lt; $x$ #\n### injected';

  it('makes a hostile name inert in the heading', () => {
    const text = quotaMarkdown(statusOf(monthly(), [], hostile), { now: NOW });
    const heading = text.split('\n')[0] ?? '';
    expect(heading).toBe(
      '### Quota for Eve \\| \\`rm -rf\\` \\*\\*x\\*\\* \\_y\\_ \\~\\~z\\~\\~ \\[link\\](http\\://evil\\.example) \\!\\[i\\](x) &lt;img src=x onerror=alert(1)&gt; &amp;lt; \\$x\\$ \\# \\#\\#\\# injected',
    );
    // Nothing of it escapes its line, and no raw HTML survives.
    expect(text.split('\n').filter((l) => l.startsWith('#'))).toHaveLength(1);
    expect(text).not.toMatch(/<|>/);
  });

  it('keeps hostile scopes and time zones inside their table cell', () => {
    const text = quotaMarkdown(
      statusOf(dailyUsd(), [monthly({ scope: 'user:a|b`<i>', window: { kind: 'day', timeZone: 'Zone|<b>' } }), monthly({ scope: 'weird|scope' })]),
      { now: NOW },
    );
    const rows = text.split('\n').filter((l) => l.startsWith('| '));
    for (const row of rows) expect(cells(row)).toHaveLength(7);
    expect(rows[2]).toContain('| user:a\\|b\\`&lt;i&gt; | daily (Zone\\|&lt;b&gt;) |');
    expect(rows[3]).toContain('| weird\\|scope |');
  });

  it.each([
    ['plain', 'Alice', 'Alice'],
    ['line breaks and controls', 'a\r\nb\tc\u0000d\u2028e', 'a b c d e'],
    ['autolinks', 'www.x.io alice@x.io https://x.io', 'www\\.x\\.io alice\\@x\\.io https\\://x\\.io'],
    ['html', '<b>&amp;</b>', '&lt;b&gt;&amp;amp;&lt;/b&gt;'],
    ['backslash first', '\\*', '\\\\\\*'],
    ['readable punctuation stays', 'Ann-Marie (R+D), 50%', 'Ann-Marie (R+D), 50%'],
  ])('%s', (_name, input, output) => {
    expect(escapeMarkdown(input)).toBe(output);
  });
});

describe('progressBar', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [4.9, 0],
    [5, 1],
    [52.3, 10],
    [78.5, 15],
    [99.9, 19],
    [100, 20],
    [250, 20],
  ])('%s percent fills %s of 20 cells', (percentage, filled) => {
    expect(progressBar(percentage)).toBe('█'.repeat(filled) + '░'.repeat(20 - filled));
  });
});

describe('relativeTime', () => {
  const MIN = 60_000;
  const H = 60 * MIN;
  const D = 24 * H;
  it.each([
    [0, 'en', 'due now'],
    [-5 * MIN, 'en', 'due now'],
    [30_000, 'en', 'in 1 min'],
    [59 * MIN, 'en', 'in 59 min'],
    [H, 'en', 'in 1 h'],
    [H + 30 * MIN, 'en', 'in 1 h 30 min'],
    [D, 'en', 'in 1 day'],
    [3 * D + 4 * H + 59 * MIN, 'en', 'in 3 days 4 h'],
    [3 * D + 4 * H, 'zh', '3 天 4 小时后'],
    [90 * MIN, 'zh', '1 小时 30 分钟后'],
    [0, 'zh', '即将重置'],
  ] as const)('%d ms (%s) → %s', (ms, locale, text) => {
    expect(relativeTime(ms, locale)).toBe(text);
  });
});
