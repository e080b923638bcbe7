import { z } from 'zod';
import { timeZoneSchema } from '../quota/budget-schema.js';
import type { UsageGroupBy, UsageRow } from '../store/types.js';
import { csvLine } from './csv.js';

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

const DIMENSIONS: readonly UsageGroupBy[] = ['user', 'project', 'key', 'model', 'day'];
const isDimension = (s: string): s is UsageGroupBy => (DIMENSIONS as readonly string[]).includes(s);

/**
 * `user`, or two dimensions comma-separated (`user,model`): a cross-tabulation. More than two
 * would make reports that explode in rows and that no spreadsheet pivot needs from the server.
 */
export const groupBySchema = z.string().transform((text, ctx): UsageGroupBy[] => {
  const parts = text.split(',').map((p) => p.trim());
  const unknown = parts.filter((p) => !isDimension(p));
  if (unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `Invalid option: expected one of ${DIMENSIONS.map((d) => `"${d}"`).join('|')}, or two of them comma-separated (got "${unknown.join('", "')}")` });
  } else if (parts.length > 2) {
    ctx.addIssue({ code: 'custom', message: `at most two dimensions, comma-separated (got ${parts.length})` });
  } else if (parts.length === 2 && parts[0] === parts[1]) {
    ctx.addIssue({ code: 'custom', message: `"${parts[0] ?? ''}" given twice; combine two different dimensions` });
  }
  return parts.filter(isDimension);
});

export const usageQuerySchema = z.object({
  groupBy: groupBySchema.default(['user']),
  from: instant.optional(),
  to: instant.optional(),
  tz: timeZoneSchema.default('UTC'),
  format: z.enum(['json', 'csv']).default('json'),
});

export interface UsageReportRow {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Input written to a prompt cache (Anthropic's), billed apart. */
  cacheWriteTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  costUsd: number;
  /** Answers served from the response cache, and what they did not cost (see Usage.savedTokens). */
  cacheHits: number;
  savedTokens: number;
  savedUsd: number;
}

const NUMBER_COLUMNS = ['requests', 'inputTokens', 'outputTokens', 'cachedTokens', 'cacheWriteTokens', 'reasoningTokens', 'totalTokens'] as const;
const CACHE_COLUMNS = ['cacheHits', 'savedTokens'] as const;

/** Dollars with micro-dollar precision, as a number (JSON) or a fixed 6-decimal string (CSV). */
const dollars = (micros: number): number => micros / 1_000_000;

const dimensionsOf = (groupBy: readonly UsageGroupBy[]): string => groupBy.join(',');

export function usageJson(groupBy: readonly UsageGroupBy[], from: number, to: number, rows: UsageRow[]) {
  const totals = {
    requests: 0,
    inputTokens: 0,
    outputTokens: 0,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    costMicros: 0,
    cacheHits: 0,
    savedTokens: 0,
    savedMicros: 0,
  };
  const out = rows.map((r) => {
    for (const column of [...NUMBER_COLUMNS, ...CACHE_COLUMNS]) totals[column] += r[column];
    totals.costMicros += r.costMicros;
    totals.savedMicros += r.savedMicros;
    const { groups, costMicros, savedMicros } = r;
    const numbers = Object.fromEntries(NUMBER_COLUMNS.map((column) => [column, r[column]]));
    const cache = { cacheHits: r.cacheHits, savedTokens: r.savedTokens, savedUsd: dollars(savedMicros) };
    return { ...Object.fromEntries(groupBy.map((d, i) => [d, groups[i]])), ...numbers, costUsd: dollars(costMicros), ...cache };
  });
  const { costMicros, savedMicros, cacheHits, savedTokens, ...totalNumbers } = totals;
  return {
    groupBy: dimensionsOf(groupBy),
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    rows: out,
    totals: { ...totalNumbers, costUsd: dollars(costMicros), cacheHits, savedTokens, savedUsd: dollars(savedMicros) },
  };
}

/** One column per dimension, then the numbers; cost from the same micro-dollars as the JSON. */
export function usageCsv(groupBy: readonly UsageGroupBy[], rows: UsageRow[]): string {
  const header = csvLine([
    ...groupBy,
    'requests',
    'input_tokens',
    'output_tokens',
    'cached_tokens',
    'cache_write_tokens',
    'reasoning_tokens',
    'total_tokens',
    'cost_usd',
    'cache_hits',
    'saved_tokens',
    'saved_usd',
  ]);
  return (
    header +
    rows
      .map((r) =>
        csvLine([
          ...r.groups,
          r.requests,
          r.inputTokens,
          r.outputTokens,
          r.cachedTokens,
          r.cacheWriteTokens,
          r.reasoningTokens,
          r.totalTokens,
          (r.costMicros / 1_000_000).toFixed(6),
          r.cacheHits,
          r.savedTokens,
          (r.savedMicros / 1_000_000).toFixed(6),
        ]),
      )
      .join('')
  );
}

export const usageCsvFileName = (groupBy: readonly UsageGroupBy[]): string => `lobe-quota-usage-by-${groupBy.join('-')}.csv`;
