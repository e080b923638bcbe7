import { z } from 'zod';
import { budgetLimitsShape, checkLimits, subjectIdSchema, thresholdsSchema, windowSchema } from '../quota/budget-schema.js';
import { channelConfigsSchema } from '../alerts/channels/config-schema.js';
import { budgetPeriod } from '../quota/budgets.js';
import { rateLimitSchema } from '../quota/rate-limits.js';
import { DEFAULT_LONG_CONTEXT_ABOVE } from '../proxy/pricing.js';
import { ESTIMATE_PROFILES, type EstimateProfileName } from '../proxy/model-family.js';
import { UPSTREAM_APIS } from '../proxy/upstream-api.js';
import { modelKeySchema } from '../util/model-pattern.js';

const port = z.number().int().min(0).max(65535);

/** A budget every subject of a kind gets unless the database holds an override for the same period. */
export const defaultBudgetSchema = z
  .strictObject({
    scope: z.enum(['global', 'project', 'user', 'key', 'upstream']).describe('Every subject of this kind gets the budget; "upstream": every upstream (provider account).'),
    window: windowSchema,
    ...budgetLimitsShape,
  })
  .superRefine(checkLimits);

export const statusLevelsSchema = z
  .strictObject({
    warning: z.number().min(0).max(1000).default(80),
    critical: z.number().min(0).max(1000).default(95),
    exceeded: z.number().min(0).max(1000).default(100),
  })
  .refine((l) => l.warning <= l.critical && l.critical <= l.exceeded, {
    message: 'levels must satisfy warning <= critical <= exceeded',
  });

export const upstreamSchema = z.strictObject({
  name: z.string().min(1).max(100),
  baseUrl: z.url().describe('e.g. https://api.openai.com/v1'),
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable')
    .optional()
    .describe('Name of the environment variable holding this upstream\'s key (the key itself never goes in the file).'),
  api: z
    .enum(UPSTREAM_APIS)
    .optional()
    .describe(
      'The wire format this upstream speaks (default "openai"): a request is sent to the first upstream that serves its model in its own format. baseUrl is what that provider\'s SDK takes: https://api.openai.com/v1, https://api.anthropic.com, https://generativelanguage.googleapis.com, http://localhost:11434.',
    ),
  models: z.array(z.string().min(1)).min(1).default(['*']).describe('Model ids served here; "*" matches anything, e.g. "gpt-*".'),
});

/** The cache rates of a price or of its long-context tier (dollars per 1M tokens). */
const cacheRates = {
  cachedInput: z.number().min(0).optional().describe('US dollars per 1M input tokens read from a cache (default: input)'),
  cacheWrite: z
    .number()
    .min(0)
    .optional()
    .describe('US dollars per 1M input tokens written to a cache for 5 minutes (default: input; Anthropic charges 1.25 × input)'),
  cacheWrite1h: z
    .number()
    .min(0)
    .optional()
    .describe('US dollars per 1M input tokens written to a cache for an hour (default: cacheWrite; Anthropic charges 2 × input)'),
};

const priceSchema = z.strictObject({
  input: z.number().min(0).describe('US dollars per 1M input tokens'),
  ...cacheRates,
  output: z.number().min(0).default(0).describe('US dollars per 1M output tokens'),
  longContext: z
    .strictObject({
      aboveInputTokens: z.number().int().min(1).default(DEFAULT_LONG_CONTEXT_ABOVE).describe('The tier applies when the whole prompt (cache reads and writes included) is above this many tokens'),
      input: z.number().min(0).describe('US dollars per 1M input tokens'),
      ...cacheRates,
      output: z.number().min(0).describe('US dollars per 1M output tokens'),
    })
    .optional()
    .describe(
      'A long-context tier, as Anthropic and Google price their largest prompts: a request whose prompt is above aboveInputTokens has ALL its tokens (output too) priced at these rates. Its cache rates default as the base ones do, from its own input.',
    ),
});

/**
 * Prices by model id or glob. A key that names no model would silently never match, so each is
 * checked (the reason shown, not zod's "Invalid key in record"), and so are keys that differ only
 * in case: they would name the same models, one price silently winning.
 */
const pricesSchema = z
  .record(modelKeySchema, priceSchema, {
    error: (issue) => (issue.code === 'invalid_key' ? issue.issues.map((inner) => inner.message).join('; ') : undefined),
  })
  .superRefine(
    (prices, ctx) => {
      const seen = new Map<string, string>();
      for (const key of Object.keys(prices)) {
        const same = seen.get(key.toLowerCase());
        if (same !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `names the same models as ${JSON.stringify(same)} (keys are case-insensitive)` });
        else seen.set(key.toLowerCase(), key);
      }
    },
    // Also beside other problems (the loader lists every one), as long as there are keys to compare.
    { when: ({ value }) => typeof value === 'object' && value !== null },
  )
  .default({})
  .describe(
    'Model prices (US dollars per 1M tokens) that override or add to the shipped table, keyed by model id or glob ("*" for any characters, like upstreams[].models), case-insensitive. A model takes its exact id\'s price first, then (for a dated snapshot such as gpt-4o-2024-08-06) its family\'s, then the most specific matching glob\'s: the one with the most characters besides "*", the first listed on a tie.',
  );

const factorSchema = z.number().min(0.1).max(20);

/**
 * Overrides of the factors that raise the count of models without a public tokenizer (see
 * server/proxy/model-family.ts), per estimate profile; a field left out keeps the shipped factor.
 */
const estimatesSchema = z
  .partialRecord(
    z.enum(Object.keys(ESTIMATE_PROFILES) as [EstimateProfileName, ...EstimateProfileName[]]),
    z.strictObject({
      common: factorSchema.optional().describe('Latin, CJK and code'),
      cyrillic: factorSchema.optional(),
      other: factorSchema.optional().describe('Greek, Arabic, Hebrew, Hangul, Vietnamese'),
      brahmic: factorSchema.optional().describe('Indic scripts, Thai and any script not named'),
      perDigit: z.number().min(0).max(5).optional().describe('tokens added per digit'),
    }),
  )
  .default({})
  .describe(
    'Factors on the o200k_base count for model families without a public tokenizer (Claude, Gemini, Llama, Qwen, …), per profile, e.g. {"claude": {"common": 1.3}}. The shipped ones err high (README: "Counting where no tokenizer is public"); lobe_quota_estimate_ratio shows how they hold up in your traffic. Lower ones leave less headroom but may let a budget be overspent.',
  );

const usersSchema = z
  .strictObject({
    autoCreate: z
      .boolean()
      .default(true)
      .describe(
        'A user a service key names (X-Quota-User, or the body\'s "user", which LobeChat fills with its own user id) who is neither a user nor an external id linked to one is created on first sight, with the default budgets. false: such requests are refused with 400.',
      ),
    autoCreateProjectId: subjectIdSchema
      .nullable()
      .default(null)
      .describe('The project users created on first sight join (it must exist), so one project budget can cap them all; null: none.'),
  })
  .describe('Users named by a service key (a LobeChat server sharing one key).');

const CACHE_DEFAULTS = { enabled: false, scope: 'user' as const, ttlSeconds: 86_400, maxMegabytes: 512, chargeFraction: 0 };

const cacheSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    scope: z
      .enum(['user', 'key', 'project'])
      .default('user')
      .describe('Who shares entries: the paying user (default), the key, or the user\'s project (users without one share with no one). Two users never share an entry unless this is "project".'),
    ttlSeconds: z.number().int().min(1).max(365 * 86_400).default(86_400).describe('How long an answer may be served from the cache.'),
    maxMegabytes: z
      .number()
      .positive()
      .max(1_000_000)
      .default(512)
      .describe('The most the stored answers may take (encrypted); the least recently used go first. An answer above a quarter of it is not stored.'),
    chargeFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('What a hit is charged, as a fraction of the first answer\'s tokens and cost (rounded up): 0 (default) serves hits free; the rest is recorded as saved.'),
  })
  .describe(
    'A private response cache: an exact repeat of a request (same API, payer, model, messages, tools and sampling parameters) is answered with the stored answer, encrypted under a key derived from the request itself, in response-cache.sqlite in dataDir (local to the instance). Requests with a temperature above 0 (the APIs\' default) are cached only with X-Quota-Cache: on; X-Quota-Cache: off always bypasses it.',
  );

const REQUESTS_DEFAULTS = { linkTtlHours: 72, autoApprove: null };

const requestsSchema = z
  .strictObject({
    linkTtlHours: z.number().int().min(1).max(24 * 30).default(72).describe('How long the approve and deny links of a request alert work.'),
    autoApprove: z
      .strictObject({
        maxPercent: z.number().gt(0).max(1_000).describe('A request up to this percent of the budget’s own limit is approved at once…'),
        perWindow: z.number().int().min(1).max(1_000).default(1).describe('…if the user had fewer policy approvals than this on that budget in its current window.'),
      })
      .nullable()
      .default(null)
      .describe('Approve small requests without an admin (null: every request waits for a decision).'),
  })
  .describe('Increase requests: their one-click links, and the policy that approves small ones at once.');

/** The config file (`lobe-quota.config.json` or `$LOBE_QUOTA_CONFIG`). Environment variables win over it. */
const SPIKE_DEFAULTS = { enabled: true, factor: 5, baselineHours: 24, minTokens: 10_000 };

const spikeSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    factor: z.number().gt(1).max(1_000).default(5).describe('A spike is the last hour above this many times the usual hourly rate.'),
    baselineHours: z.number().int().min(1).max(24 * 30).default(24).describe('Hours before the last hour that make the usual rate.'),
    minTokens: z.number().int().min(0).default(10_000).describe('Tokens in the last hour below which nothing is a spike.'),
  })
  .describe('Anomaly alerts for a user, project or key whose last hour jumps above its usual rate.');

const DATABASE_DEFAULTS = {
  schema: 'public',
  poolSize: 10,
  statementTimeoutMs: 5_000,
  connectTimeoutMs: 2_000,
  heartbeatSeconds: 5,
  failOpen: false,
  sqliteSynchronous: 'normal' as const,
};

const databaseSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional()
      .describe('PostgreSQL for several instances (env DATABASE_URL wins). Unset: SQLite in dataDir.'),
    schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier').default('public').describe('The PostgreSQL schema the tables live in.'),
    poolSize: z.number().int().min(1).max(200).default(10).describe('Connections per instance.'),
    statementTimeoutMs: z.number().int().min(100).default(5_000).describe('Longest any one statement may run.'),
    connectTimeoutMs: z.number().int().min(100).default(2_000).describe('How long to wait for a connection before retrying.'),
    heartbeatSeconds: z
      .number()
      .int()
      .min(1)
      .max(3_600)
      .default(5)
      .describe('How often an instance says it is alive; after three beats of silence, any instance releases its holds.'),
    failOpen: z
      .boolean()
      .default(false)
      .describe('When the database is unreachable: false refuses proxy requests with 503; true lets them through unmetered.'),
    sqliteSynchronous: z
      .enum(['normal', 'full'])
      .default('normal')
      .describe(
        'SQLite only. normal: a killed process loses no commit, but a power loss or OS crash may undo the last ones. full: every commit (one per group of settles) waits for the disk, and survives those too, at a cost (BENCHMARKS.md).',
      ),
  })
  .default(DATABASE_DEFAULTS)
  .describe('The store: PostgreSQL, for several instances sharing one; or how durable the embedded SQLite is.');

export const configFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    port: port.default(3400).describe('Port to listen on (env PORT).'),
    host: z.string().min(1).default('127.0.0.1').describe('Interface to bind (env HOST). Use 0.0.0.0 to accept remote clients.'),
    publicUrl: z.url().optional().describe('Base URL clients reach the service at (env PUBLIC_URL); defaults to http://HOST:PORT.'),
    dataDir: z.string().min(1).default('./data').describe('Where the SQLite database lives (env DATA_DIR).'),
    database: databaseSchema,
    statusLevels: statusLevelsSchema
      .default({ warning: 80, critical: 95, exceeded: 100 })
      .describe('Percentages at which /quota reports warning, critical and exceeded.'),
    holds: z
      .strictObject({
        ttlSeconds: z.number().int().min(10).max(86_400).default(900),
      })
      .default({ ttlSeconds: 900 })
      .describe('A hold whose request stopped renewing it is released after this long.'),
    alerts: z
      .strictObject({
        thresholds: thresholdsSchema.default([50, 80, 90, 95, 100]).describe('Thresholds (percent) of budgets that do not set their own.'),
        channels: channelConfigsSchema.default([]).describe('Where alerts are delivered: webhook, slack, dingtalk, wecom, feishu, email, twilio (SMS), aliyun-sms (SMS).'),
        locale: z.enum(['en', 'zh']).default('en').describe('Language of alert messages.'),
        projection: z.boolean().default(true).describe('Alert once per window when the burn rate runs a budget out before its reset.'),
        spike: spikeSchema.default(SPIKE_DEFAULTS),
      })
      .default({ thresholds: [50, 80, 90, 95, 100], channels: [], locale: 'en', projection: true, spike: SPIKE_DEFAULTS })
      .describe('Alerts: thresholds, channels, language.'),
    upstreams: z
      .array(upstreamSchema)
      .default([])
      .describe('Where models are served. Empty: everything goes to OPENAI_BASE_URL with OPENAI_API_KEY.'),
    proxy: z
      .strictObject({
        connectTimeoutMs: z.number().int().min(100).default(10_000),
        firstByteTimeoutMs: z.number().int().min(100).default(300_000),
        idleTimeoutMs: z.number().int().min(100).default(120_000),
        leaseTokens: z.number().int().min(16).max(1_000_000).default(256),
        maxBodyBytes: z.number().int().min(1024).default(32 * 1024 * 1024),
        unpricedModels: z.enum(['refuse', 'allow']).default('refuse'),
        downgradeCeilingPercent: z.number().min(100).max(1000).default(120),
        streamWholeAnswers: z
          .boolean()
          .default(false)
          .describe(
            'Ask the upstream for a stream even when the client wants a whole answer, and assemble the answer here: it then holds a lease instead of its whole allowance and is cut at the budget like a stream, even from an upstream that ignores max_tokens. Costs proxy CPU (see BENCHMARKS.md); needs an upstream that streams usage.',
          ),
        refusalStyle: z
          .enum(['error', 'answer'])
          .default('error')
          .describe(
            'How quota and rate refusals on chat endpoints are answered, unless a key says otherwise: "error" (HTTP 429, OpenAI\'s error body) or "answer" (HTTP 200, a normal assistant answer whose text is the refusal; for chat front ends that hide error bodies, such as LobeHub 2.x on the Responses API).',
          ),
        corsOrigins: z
          .array(z.string().min(1))
          .default(['*'])
          .describe(
            'Origins a browser may call the proxy routes from (LobeChat\'s client request mode fetches from the browser). ["*"]: any; the proxy takes bearer keys, never cookies, so no other site can spend with a visitor\'s credentials. []: no CORS.',
          ),
        estimates: estimatesSchema,
      })
      .default({
        connectTimeoutMs: 10_000,
        firstByteTimeoutMs: 300_000,
        idleTimeoutMs: 120_000,
        leaseTokens: 256,
        maxBodyBytes: 32 * 1024 * 1024,
        unpricedModels: 'refuse',
        downgradeCeilingPercent: 120,
        streamWholeAnswers: false,
        refusalStyle: 'error',
        corsOrigins: ['*'],
        estimates: {},
      })
      .describe(
        'Upstream timeouts; the output lease a stream holds and grows by; the largest request body; whether a model without a price may run under a dollar budget; how refusals are answered; CORS.',
      ),
    prices: pricesSchema,
    rateLimits: z
      .strictObject({ key: rateLimitSchema.optional(), user: rateLimitSchema.optional(), project: rateLimitSchema.optional() })
      .default({})
      .describe(
        'Request and concurrency limits of every key, user and project, checked with the budgets in one atomic admission (shared by every instance on PostgreSQL); PUT /admin/rate-limits overrides them per subject.',
      ),
    retention: z
      .strictObject({
        ledgerDays: z
          .number()
          .int()
          .min(1)
          .nullable()
          .default(null)
          .describe('Ledger entries older than this many days are rolled up into quarter-hour totals and deleted; null keeps every entry.'),
      })
      .default({ ledgerDays: null })
      .describe('How long individual ledger entries are kept. Reports and budgets give the same results either way.'),
    defaultBudgets: z
      .array(defaultBudgetSchema)
      .default([])
      .superRefine((budgets, ctx) => {
        const seen = new Set<string>();
        budgets.forEach((b, i) => {
          const key = `${b.scope}|${budgetPeriod(b.window, b.models ?? null)}`;
          if (seen.has(key)) {
            const models = b.models ? ` and models` : '';
            ctx.addIssue({ code: 'custom', path: [i], message: `a second ${b.scope} budget for the same period${models} (${budgetPeriod(b.window, b.models ?? null)})` });
          }
          seen.add(key);
        });
      })
      .describe('Budgets every subject of a kind gets, e.g. every user 1M tokens a month.'),
    users: usersSchema.default({ autoCreate: true, autoCreateProjectId: null }),
    cache: cacheSchema.default(CACHE_DEFAULTS),
    requests: requestsSchema.default(REQUESTS_DEFAULTS),
  })
  .describe('lobe-quota configuration');

export type ConfigFile = z.infer<typeof configFileSchema>;
export type DefaultBudget = z.infer<typeof defaultBudgetSchema>;
export type StatusLevelsConfig = z.infer<typeof statusLevelsSchema>;
export type ProxySettings = ConfigFile['proxy'];
export type PriceOverrides = ConfigFile['prices'];
export type RateLimitsConfig = ConfigFile['rateLimits'];
export type AlertsConfig = Omit<ConfigFile['alerts'], 'thresholds'>;
export type RetentionConfig = ConfigFile['retention'];
export type DatabaseConfig = ConfigFile['database'];
export type UsersConfig = ConfigFile['users'];
export type CacheConfig = ConfigFile['cache'];
export type RequestsConfig = ConfigFile['requests'];

/** An empty variable means unset (a `PORT=` line in an env file must not mean port ""). */
const envString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
const envPort = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z.string().regex(/^\d+$/, 'must be a port number (0-65535)').transform(Number).pipe(port).optional(),
);

export const envSchema = z.object({
  PORT: envPort,
  HOST: envString,
  PUBLIC_URL: z.preprocess((v) => (v === '' ? undefined : v), z.url().optional()),
  DATA_DIR: envString,
  DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional()),
  ADMIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  /** A token that may read `GET /metrics` only, so a Prometheus server need not hold the admin token. */
  METRICS_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  OPENAI_BASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.url().optional()),
  OPENAI_API_KEY: envString,
  LOBE_QUOTA_CONFIG: envString,
});
