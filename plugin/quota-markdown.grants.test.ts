import { describe, expect, it } from 'vitest';
import { quotaMarkdown } from './quota-markdown.js';
import { NOW, monthly, statusOf } from './quota-status.test-util.js';

/** A budget whose limit includes a grant: 100,000 of its own and 20,000 granted by an approval link. */
const granted = monthly({
  limitTokens: 120_000,
  remainingTokens: 41_500,
  grantedTokens: 20_000,
  grantedUsd: 0,
  grants: [{ id: 'grant_1', tokens: 20_000, usd: 0, decidedBy: 'link', endsAt: '2026-12-01T00:00:00+08:00', reason: 'release week' }],
});

describe('quotaMarkdown of a budget with grants', () => {
  it('says the limit includes the grant, how much and by whom, in English and Chinese', () => {
    const en = quotaMarkdown(statusOf(granted), { now: NOW });
    expect(en).toContain('78,500 of 120,000 tokens');
    expect(en).toContain('- **Granted:** the limit includes +20,000 tokens granted by an approval link, until the window ends');
    const zh = quotaMarkdown(statusOf(granted), { now: NOW, locale: 'zh' });
    expect(zh).toContain('- **额外授予：** 上限已含审批链接批准的 +20,000 tokens');
  });

  it('says nothing of grants when there are none', () => {
    expect(quotaMarkdown(statusOf(monthly()), { now: NOW })).not.toContain('Granted');
  });
});
