// `npm run bench:card`: how long check_quota's card image takes to draw (each part of the card laid
// out by satori, drawn by resvg and deflated on a worker thread; the bands joined into one PNG) and
// how large it is, in English and Chinese, with 1, 4 and 9 budgets (9: six rows and "+2 more").
// The first render also starts the worker threads, which read and parse the fonts; it is shown
// apart. Renders run one at a time, as the MCP route makes them. "loop" is the event loop's busy
// time per render (what other requests wait for); CPU time counts every thread, the workers too.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { renderQuotaCard } from '../plugin/card-image/render-card.js';
import type { Locale } from '../plugin/quota-markdown.js';
import type { BudgetStatus, QuotaStatus } from '../server/quota/status-report.js';
import { fmt, median, percentile } from './figures.js';

const { values: args } = parseArgs({ options: { renders: { type: 'string', default: '200' } } });
const RENDERS = Number(args.renders);
const WARMUP = 10;
const NOW = Date.parse('2026-11-22T12:00:00Z');

const budget = (over: Partial<BudgetStatus>): BudgetStatus => ({
  id: 'b',
  source: 'admin',
  scope: 'user:alice',
  window: { kind: 'month', timeZone: 'Asia/Shanghai' },
  usedTokens: 78_500,
  reservedTokens: 1_200,
  limitTokens: 100_000,
  remainingTokens: 20_300,
  usedUsd: 1.23,
  reservedUsd: 0,
  limitUsd: null,
  remainingUsd: null,
  percentage: 78.5,
  status: 'normal',
  resetsAt: '2026-12-01T00:00:00+08:00',
  onLimit: 'reject',
  ...over,
});

/** Alice's monthly tokens on top, then `others` budgets of her projects, keys and everyone. */
function status(others: number, name: string): QuotaStatus {
  const top = budget({});
  const rest = Array.from({ length: others }, (_, i) =>
    budget({
      id: `b${i}`,
      scope: i === 0 ? 'global' : i % 2 ? `project:team-${i}` : `key:key_${i}`,
      window: i % 2 ? { kind: 'day', timeZone: 'UTC' } : { kind: 'rolling', hours: 5 },
      usedTokens: 4_000 * i,
      reservedTokens: 0,
      percentage: 9 * i,
      status: 9 * i >= 80 ? 'warning' : 'normal',
    }),
  );
  return {
    subject: { kind: 'user', id: 'alice', name },
    usage: top.usedTokens,
    limit: top.limitTokens,
    unit: 'tokens',
    percentage: top.percentage,
    remaining: top.remainingTokens,
    status: top.status,
    nextReset: top.resetsAt,
    budgets: [top, ...rest],
  };
}

interface Figures {
  p50: number;
  p95: number;
  loopMs: number;
  cpuMs: number;
  bytes: number;
  width: number;
  height: number;
}

async function measure(quota: QuotaStatus, locale: Locale): Promise<Figures> {
  for (let i = 0; i < WARMUP; i++) await renderQuotaCard(quota, { locale, now: NOW });
  const times: number[] = [];
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  let last = await renderQuotaCard(quota, { locale, now: NOW });
  for (let i = 0; i < RENDERS; i++) {
    const started = performance.now();
    last = await renderQuotaCard(quota, { locale, now: NOW });
    times.push(performance.now() - started);
  }
  const used = process.cpuUsage(cpu);
  const busy = performance.eventLoopUtilization(loop);
  return {
    p50: median(times),
    p95: percentile(times, 95),
    loopMs: busy.active / (RENDERS + 1),
    cpuMs: (used.user + used.system) / 1000 / (RENDERS + 1),
    bytes: last.png.length,
    width: last.width,
    height: last.height,
  };
}

async function main() {
  console.log(`command: npm run bench:card -- --renders ${RENDERS}`);
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, node ${process.version}`);

  const started = performance.now();
  await renderQuotaCard(status(3, 'Alice'), { locale: 'zh', now: NOW });
  console.log(`first render (starts the worker threads, which read and parse the fonts): ${fmt(performance.now() - started, 1)} ms`);

  console.log(`\nrender time per card, ${fmt(RENDERS)} renders one at a time after ${WARMUP} to warm up:`);
  console.log(`  ${'card'.padEnd(26)} ${'size (px)'.padStart(10)} ${'p50'.padStart(9)} ${'p95'.padStart(9)} ${'loop'.padStart(9)} ${'CPU'.padStart(9)} ${'PNG'.padStart(9)}`);
  for (const others of [0, 3, 8]) {
    for (const [locale, name] of [['en', 'Alice'], ['zh', '张伟']] as const) {
      const f = await measure(status(others, name), locale);
      const label = `${locale}, ${others + 1} budget${others === 0 ? '' : 's'}`;
      console.log(
        `  ${label.padEnd(26)} ${`${f.width}×${f.height}`.padStart(10)} ${`${fmt(f.p50, 1)} ms`.padStart(9)} ${`${fmt(f.p95, 1)} ms`.padStart(9)} ${`${fmt(f.loopMs, 1)} ms`.padStart(9)} ${`${fmt(f.cpuMs, 1)} ms`.padStart(9)} ${`${fmt(f.bytes / 1024, 1)} KB`.padStart(9)}`,
      );
    }
  }
  console.log(`\nprocess memory after the renders (RSS, the worker threads included): ${fmt(process.memoryUsage().rss / 2 ** 20)} MB`);
}

await main();
