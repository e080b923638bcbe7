import { z } from 'zod';
import { timeZoneSchema } from '../quota/budget-schema.js';
import type { UsageGroupBy, UsageRow } from '../store/types.js';
import { csvLine } from './csv.js';

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const usageQuerySchema = z.object({
  groupBy: z.enum(['user', 'project', 'key', 'model', 'day']).default('user'),
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
  reasoningTokens: number;
  totalTokens: number;
  costUsd: number;
}

const NUMBER_COLUMNS = ['requests', 'inputTokens', 'outputTokens', 'cachedTokens', 'reasoningTokens', 'totalTokens'] as const;

/** Dollars with micro-dollar precision, as a number (JSON) or a fixed 6-decimal string (CSV). */
const dollars = (micros: number): number => micros / 1_000_000;

export function usageJson(groupBy: UsageGroupBy, from: number, to: number, rows: UsageRow[]) {
  const totals = { requests: 0, inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, totalTokens: 0, costMicros: 0 };
  const out = rows.map((r) => {
    for (const column of NUMBER_COLUMNS) totals[column] += r[column];
    totals.costMicros += r.costMicros;
    const { group, costMicros, ...numbers } = r;
    return { [groupBy]: group, ...numbers, costUsd: dollars(costMicros) };
  });
  const { costMicros, ...totalNumbers } = totals;
  return {
    groupBy,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    rows: out,
    totals: { ...totalNumbers, costUsd: dollars(costMicros) },
  };
}

export function usageCsv(groupBy: UsageGroupBy, rows: UsageRow[]): string {
  const header = csvLine([groupBy, 'requests', 'input_tokens', 'output_tokens', 'cached_tokens', 'reasoning_tokens', 'total_tokens', 'cost_usd']);
  return (
    header +
    rows
      .map((r) =>
        csvLine([
          r.group,
          r.requests,
          r.inputTokens,
          r.outputTokens,
          r.cachedTokens,
          r.reasoningTokens,
          r.totalTokens,
          (r.costMicros / 1_000_000).toFixed(6),
        ]),
      )
      .join('')
  );
}
