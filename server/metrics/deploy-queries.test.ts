import { readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import OpenAI from 'openai';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from '../testing/fake-openai.js';
import { ADMIN_TOKEN, serveInFrontOf, userWithKey, type ServerInFront } from '../testing/harness.js';
import { metricSelectors, type MetricSelector } from '../testing/promql-selectors.js';

/**
 * The shipped Grafana dashboard and Prometheus rules (deploy/) against a real server's /metrics:
 * every query must name metrics, and label names in its matchers, that the server exports.
 * Prometheus answers an unknown name with an empty result, never an error, so a renamed metric
 * would otherwise leave a blank panel and an alert that never fires.
 */
const DASHBOARD_FILE = new URL('../../deploy/grafana/lobe-quota-dashboard.json', import.meta.url);
const RULES_FILE = new URL('../../deploy/prometheus/lobe-quota-alerts.yml', import.meta.url);

/** Series Prometheus makes itself for every target, not the server. */
const SCRAPE_METRICS = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added']);
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(['job', 'instance']);
/** Metrics with no series in this test's run: no alert channel is configured, so no outbox. Their label names go unchecked. */
const WITHOUT_SERIES = new Set(['lobe_quota_alert_deliveries_pending', 'lobe_quota_alert_deliveries_failing', 'lobe_quota_alert_oldest_pending_seconds']);

interface Query {
  where: string;
  expr: string;
}

interface GrafanaTarget {
  expr?: unknown;
  refId?: unknown;
  datasource?: unknown;
}
interface GrafanaPanel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  datasource?: unknown;
  targets?: GrafanaTarget[];
  gridPos?: unknown;
  panels?: GrafanaPanel[];
}
interface GrafanaVariable {
  name?: unknown;
  type?: unknown;
  query?: unknown;
}
interface GrafanaDashboard {
  uid?: unknown;
  title?: unknown;
  schemaVersion?: unknown;
  __inputs?: Array<{ name?: unknown; type?: unknown; pluginId?: unknown }>;
  templating?: { list?: GrafanaVariable[] };
  panels?: GrafanaPanel[];
}

interface RuleFile {
  groups?: Array<{ name?: unknown; rules?: Array<Record<string, unknown>> }>;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as GrafanaDashboard;
const rules = loadYaml(readFileSync(RULES_FILE, 'utf8'), { filename: 'lobe-quota-alerts.yml' }) as RuleFile;

/** Every panel, rows' nested panels included (a collapsed row holds its panels). */
const allPanels = (panels: GrafanaPanel[] = []): GrafanaPanel[] => panels.flatMap((p) => [p, ...allPanels(p.panels)]);
const queryPanels = () => allPanels(dashboard.panels).filter((p) => p.type !== 'row');

function dashboardQueries(): Query[] {
  const queries: Query[] = [];
  for (const panel of queryPanels()) {
    for (const target of panel.targets ?? []) queries.push({ where: `panel "${String(panel.title)}" ${String(target.refId)}`, expr: String(target.expr) });
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const text = typeof variable.query === 'string' ? variable.query : String((variable.query as { query?: unknown }).query);
    // label_values(<selector>, <label>): the selector is PromQL, the label is not.
    const labelValues = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/s.exec(text.trim());
    queries.push({ where: `variable $${String(variable.name)}`, expr: labelValues?.[1] ?? text });
  }
  return queries;
}

function ruleQueries(): Query[] {
  return (rules.groups ?? []).flatMap((group) =>
    (group.rules ?? []).map((rule) => ({ where: `rule ${String(rule.alert ?? rule.record)}`, expr: String(rule.expr) })),
  );
}

/** What a scrape of the real server shows: each family's type and the label names its samples carry. */
interface Exported {
  types: Map<string, string>;
  labels: Map<string, Set<string>>;
}

function exported(text: string): Exported {
  // Names and types from the `# TYPE` lines: prom-client writes one for every metric, samples or not.
  const types = new Map<string, string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) if (name && type) types.set(name, type);
  const labels = new Map<string, Set<string>>();
  for (const family of parsePrometheusTextFormat(text)) {
    const names = new Set(family.metrics.flatMap((m) => Object.keys(m.labels ?? {})));
    if (family.metrics.length > 0) labels.set(family.name, names);
  }
  return { types, labels };
}

/** The exported family a selector reads: a histogram's or summary's series carry suffixes. */
function familyOf(metric: string, types: Map<string, string>): string | null {
  if (types.has(metric)) return metric;
  const suffixed = /^(.*)_(bucket|sum|count)$/.exec(metric);
  const base = suffixed?.[1];
  if (base === undefined) return null;
  const type = types.get(base);
  if (type === 'histogram') return base;
  if (type === 'summary' && suffixed?.[2] !== 'bucket') return base;
  return null;
}

/** Problems with one selector against the exposition; empty when it is fine. */
function problemsOf(selector: MetricSelector, scraped: Exported): string[] {
  if (SCRAPE_METRICS.has(selector.metric)) return selector.labels.filter((l) => !TARGET_LABELS.has(l)).map((l) => `${selector.metric} has no label ${l}`);
  const family = familyOf(selector.metric, scraped.types);
  if (family === null) return [`${selector.metric} is not exported`];
  const known = scraped.labels.get(family);
  if (known === undefined) return WITHOUT_SERIES.has(family) ? [] : [`${family} has no series in this run: drive a request that makes one`];
  const histogramLabel = family !== selector.metric && selector.metric.endsWith('_bucket') ? ['le'] : [];
  return selector.labels.filter((l) => !TARGET_LABELS.has(l) && !known.has(l) && !histogramLabel.includes(l)).map((l) => `${selector.metric} has no label ${l}`);
}

describe('metricSelectors (the PromQL tokenizer the check relies on)', () => {
  it('finds metric names and their matchers, not functions, keywords, label lists, strings, durations or Grafana variables', () => {
    expect(
      metricSelectors(
        'histogram_quantile(0.99, sum by (le, job) (rate(a_seconds_bucket{job=~"$job", le!="+Inf"}[$__rate_interval]))) / on (job) group_left () sum without (model) (b_total offset 1h) > bool 0.5e1 or vector(0) and absent(up{job="x"}) unless count(c{x=\'a}b{c\'}) by (z)',
      ),
    ).toEqual([
      { metric: 'a_seconds_bucket', labels: ['job', 'le'] },
      { metric: 'b_total', labels: [] },
      { metric: 'up', labels: ['job'] },
      { metric: 'c', labels: ['x'] },
    ]);
    expect(metricSelectors('max_over_time(deriv(m:rate5m[1h:5m])[1d:]) * ${factor} - 1 / 60')).toEqual([{ metric: 'm:rate5m', labels: [] }]);
    expect(() => metricSelectors('{__name__="x"}')).toThrow(/without a metric name/);
    expect(() => metricSelectors('x{job="a}')).toThrow();
  });
});

describe('deploy/: the Grafana dashboard and the Prometheus rules', () => {
  let server: ServerInFront;
  let scraped: Exported;

  beforeAll(async () => {
    const a = await startFakeOpenAI();
    const b = await startFakeOpenAI();
    server = await serveInFrontOf(
      { close: async () => Promise.all([a.close(), b.close()]).then(() => undefined) },
      {
        upstreams: [
          { name: 'plan-a', baseUrl: a.baseUrl, apiKey: 'sk-a', models: ['*'] },
          { name: 'plan-b', baseUrl: b.baseUrl, apiKey: 'sk-b', models: ['*'] },
        ],
        defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' }],
        config: { cache: { enabled: true, scope: 'user', ttlSeconds: 3_600, maxMegabytes: 16, chargeFraction: 0 } },
      },
    );
    const admin = async (body: object) => expect((await server.svc.admin('PUT', '/admin/budgets', body)).status).toBeLessThan(300);
    const alice = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.alice.secret, maxRetries: 0 });
    const ask = (model: string, content: string, extra: { max_tokens?: number; temperature?: number } = {}) =>
      alice.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra });

    // Routed: gpt-5's own dollar budget sends it to gpt-5-mini past 90 % (see routing.proxy.test.ts).
    await admin({ scope: 'user:alice', window: { kind: 'day', timeZone: 'UTC' }, limitUsd: 0.000_45, models: ['gpt-5'], fallback: [{ at: 90, to: 'gpt-5-mini' }] });
    a.enqueue({ kind: 'reply', outputTokens: 40 });
    await ask('gpt-5', 'hi', { max_tokens: 40 });
    expect((await ask('gpt-5', 'hi', { max_tokens: 2 })).model).toBe('gpt-5-mini');
    // A failover: plan-a answers 503, plan-b serves.
    a.enqueue({ kind: 'error', status: 503 });
    await ask('gpt-4o-mini', 'fail over');
    // A cache miss then a hit (temperature 0 is cached).
    await ask('gpt-4o-mini', 'Name three marsupials.', { temperature: 0 });
    await ask('gpt-4o-mini', 'Name three marsupials.', { temperature: 0 });
    // A stream, whose output is counted as it goes (the output estimate).
    const stream = await alice.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream' }], stream: true });
    for await (const chunk of stream) void chunk;
    // A refusal: bob's budget of 5 tokens.
    const bob = await userWithKey(server.svc.store, 'bob');
    await admin({ scope: 'user:bob', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 5 });
    const refused = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: bob.secret, maxRetries: 0 }).chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(100) }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);

    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(response.status).toBe(200);
    scraped = exported(await response.text());
  });

  afterAll(async () => {
    await server?.close();
  });

  it('the run made the series the label checks read', () => {
    expect([...scraped.labels.keys()]).toEqual(expect.arrayContaining(['lobe_quota_routed_total', 'lobe_quota_upstream_failovers_total', 'lobe_quota_response_cache_lookups_total', 'lobe_quota_estimate_ratio']));
    for (const name of WITHOUT_SERIES) expect(scraped.types.get(name)).toBe('gauge');
  });

  it('every dashboard and rule query names only metrics and labels that /metrics exports', () => {
    const queries = [...dashboardQueries(), ...ruleQueries()];
    expect(queries.length).toBeGreaterThan(40);
    const problems = queries.flatMap((q) => {
      const selectors = metricSelectors(q.expr);
      if (selectors.length === 0) return [`${q.where}: no metric in ${q.expr}`];
      return selectors.flatMap((s) => problemsOf(s, scraped).map((p) => `${q.where}: ${p}`));
    });
    expect(problems).toEqual([]);
  });

  it('the dashboard shows every lobe_quota_ metric (a new metric needs a panel)', () => {
    const used = new Set(dashboardQueries().flatMap((q) => metricSelectors(q.expr).map((s) => familyOf(s.metric, scraped.types))));
    const missing = [...scraped.types.keys()].filter((name) => name.startsWith('lobe_quota_') && !used.has(name));
    expect(missing).toEqual([]);
  });

  it('the dashboard imports anywhere: a uid, a title, a ${DS_PROMETHEUS} input, and panels that each query it', () => {
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.title).toEqual(expect.any(String));
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    // Also a datasource variable of that name, so the file works when provisioned (no import step fills inputs).
    expect(dashboard.templating?.list).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' }));
    const datasource = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
    const panels = queryPanels();
    expect(panels.length).toBeGreaterThan(20);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.title, JSON.stringify(panel.gridPos)).toEqual(expect.any(String));
      expect(panel.datasource, String(panel.title)).toEqual(datasource);
      expect(panel.gridPos, String(panel.title)).toMatchObject({ w: expect.any(Number), h: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
      expect(panel.targets?.length, String(panel.title)).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource, String(panel.title)).toEqual(datasource);
        expect(target.expr, String(panel.title)).toEqual(expect.any(String));
      }
    }
  });

  it('the rules file has the Prometheus rule group shape: every alert with expr, for, a severity and annotations', () => {
    const groups = rules.groups ?? [];
    expect(groups.length).toBeGreaterThan(0);
    expect(new Set(groups.map((g) => g.name)).size).toBe(groups.length);
    const alerts = groups.flatMap((g) => g.rules ?? []);
    for (const rule of alerts) {
      expect(Object.keys(rule).filter((k) => !['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k)), String(rule.alert)).toEqual([]);
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
      expect(rule.expr, String(rule.alert)).toEqual(expect.any(String));
      expect(rule.for, String(rule.alert)).toMatch(/^([0-9]+[smhdwy])+$/);
      expect(rule.labels, String(rule.alert)).toMatchObject({ severity: expect.stringMatching(/^(critical|warning|info)$/) });
      expect(rule.annotations, String(rule.alert)).toMatchObject({ summary: expect.any(String), description: expect.any(String) });
    }
    // The ones the issue asks for.
    const names = alerts.map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'LobeQuotaBudgetCritical',
        'LobeQuotaBudgetExceeded',
        'LobeQuotaRefusalsRising',
        'LobeQuotaUpstreamFailovers',
        'LobeQuotaAlertDeliveryFailing',
        'LobeQuotaAlertPendingTooLong',
        'LobeQuotaDown',
      ]),
    );
  });
});
