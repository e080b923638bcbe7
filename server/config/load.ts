import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { channelSecretEnv } from '../alerts/channels/config-schema.js';
import type { UpstreamConfig } from '../proxy/upstreams.js';
import {
  configFileSchema,
  envSchema,
  type AlertsConfig,
  type CacheConfig,
  type RequestsConfig,
  type DatabaseConfig,
  type DefaultBudget,
  type PriceOverrides,
  type ProxySettings,
  type RateLimitsConfig,
  type RetentionConfig,
  type StatusLevelsConfig,
  type UsersConfig,
} from './schema.js';

export const DEFAULT_CONFIG_FILE = 'lobe-quota.config.json';

/** Everything the service runs with, after the file and the environment are merged. */
export interface Config {
  port: number;
  host: string;
  /** The URL clients reach the service at, when the operator set one (see `publicUrlOf`). */
  publicUrl: string | null;
  dataDir: string;
  /** PostgreSQL settings; `url` null means SQLite in `dataDir`. */
  database: Omit<DatabaseConfig, 'url'> & { url: string | null };
  /** Set when the operator supplies the admin token; otherwise one is generated on first start. */
  adminToken: string | undefined;
  /** METRICS_TOKEN: reads `GET /metrics` and nothing else (the admin token reads it too). */
  metricsToken: string | undefined;
  /** In routing order; the last serves every model when no upstream is configured. */
  upstreams: UpstreamConfig[];
  proxy: ProxySettings;
  prices: PriceOverrides;
  rateLimits: RateLimitsConfig;
  statusLevels: StatusLevelsConfig;
  holdTtlMs: number;
  alertThresholds: number[];
  alerts: AlertsConfig;
  retention: RetentionConfig;
  defaultBudgets: DefaultBudget[];
  /** Users named by a service key: created on first sight, and into which project. */
  users: UsersConfig;
  /** The private response cache (off by default). */
  cache: CacheConfig;
  /** Increase requests: link lifetime and the auto-approve policy. */
  requests: RequestsConfig;
  /** The config file read, or null when none exists. */
  configPath: string | null;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A key as the problem names it: quoted (control characters escaped) unless it is a plain word. */
const pathSegment = (key: PropertyKey): string => (typeof key === 'string' && !/^[\w$-]+$/.test(key) ? JSON.stringify(key) : String(key));

const describeIssues = (where: string, error: z.ZodError): string[] =>
  error.issues.map((issue) => {
    const at = issue.path.length > 0 ? issue.path.map(pathSegment).join('.') : '(root)';
    return `${where}: ${at}: ${issue.message}`;
  });

/**
 * Reads the config file (if any) and the environment. Never throws for bad input: every problem
 * of the file and of the environment comes back at once, so an operator fixes them in one go.
 */
export function loadConfig({ env = process.env, cwd = process.cwd() }: LoadConfigOptions = {}): ConfigResult {
  const problems: string[] = [];

  const envParsed = envSchema.safeParse(env);
  if (!envParsed.success) problems.push(...describeIssues('environment', envParsed.error));
  const vars = envParsed.success ? envParsed.data : {};

  const explicitPath = env.LOBE_QUOTA_CONFIG || undefined;
  const configPath = path.resolve(cwd, explicitPath ?? DEFAULT_CONFIG_FILE);
  let raw: unknown = {};
  let readPath: string | null = null;
  if (existsSync(configPath)) {
    readPath = configPath;
    try {
      raw = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (error) {
      problems.push(`${configPath}: not valid JSON: ${(error as Error).message}`);
    }
  } else if (explicitPath !== undefined) {
    problems.push(`LOBE_QUOTA_CONFIG: no file at ${configPath}`);
  }

  const file = configFileSchema.safeParse(raw);
  if (!file.success) problems.push(...describeIssues(readPath ?? 'config', file.error));
  if (problems.length > 0 || !file.success) return { ok: false, problems };

  const upstreams: UpstreamConfig[] = file.data.upstreams.map((u) => ({
    name: u.name,
    baseUrl: u.baseUrl,
    apiKey: u.apiKeyEnv === undefined ? undefined : env[u.apiKeyEnv] || undefined,
    models: u.models,
    ...(u.api === undefined ? {} : { api: u.api }),
  }));
  file.data.alerts.channels.forEach((c, i) => {
    const name = channelSecretEnv(c);
    if (name !== null && !env[name]) problems.push(`${readPath ?? 'config'}: alerts.channels.${i}: the ${c.type} channel's secret: environment variable ${name} is not set`);
  });
  file.data.upstreams.forEach((u, i) => {
    if (u.apiKeyEnv !== undefined && !env[u.apiKeyEnv]) problems.push(`${readPath ?? 'config'}: upstreams.${i}.apiKeyEnv: environment variable ${u.apiKeyEnv} is not set`);
  });
  // OPENAI_BASE_URL / OPENAI_API_KEY: the only upstream when none is configured, else a catch-all
  // after the configured ones when either is set.
  if (upstreams.length === 0 || vars.OPENAI_BASE_URL !== undefined || vars.OPENAI_API_KEY !== undefined) {
    upstreams.push({ name: 'openai', baseUrl: vars.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', apiKey: vars.OPENAI_API_KEY, models: ['*'] });
  }
  if (problems.length > 0) return { ok: false, problems };

  const port = vars.PORT ?? file.data.port;
  const host = vars.HOST ?? file.data.host;
  const publicUrl = vars.PUBLIC_URL ?? file.data.publicUrl ?? null;
  return {
    ok: true,
    config: {
      port,
      host,
      publicUrl: publicUrl === null ? null : publicUrl.replace(/\/+$/, ''),
      dataDir: path.resolve(cwd, vars.DATA_DIR ?? file.data.dataDir),
      database: { ...file.data.database, url: vars.DATABASE_URL ?? file.data.database.url ?? null },
      adminToken: vars.ADMIN_TOKEN,
      metricsToken: vars.METRICS_TOKEN,
      upstreams,
      proxy: file.data.proxy,
      prices: file.data.prices,
      rateLimits: file.data.rateLimits,
      statusLevels: file.data.statusLevels,
      holdTtlMs: file.data.holds.ttlSeconds * 1000,
      alertThresholds: file.data.alerts.thresholds,
      alerts: {
        channels: file.data.alerts.channels,
        locale: file.data.alerts.locale,
        projection: file.data.alerts.projection,
        spike: file.data.alerts.spike,
      },
      retention: file.data.retention,
      defaultBudgets: file.data.defaultBudgets,
      users: file.data.users,
      cache: file.data.cache,
      requests: file.data.requests,
      configPath: readPath,
    },
  };
}

/**
 * The base URL printed and put into the manifest: PUBLIC_URL when set, else one that clients on this
 * machine can use (a wildcard bind is reached through localhost; port 0 means the port bound).
 */
export function publicUrlOf(config: Pick<Config, 'publicUrl' | 'host'>, boundPort: number): string {
  if (config.publicUrl !== null) return config.publicUrl;
  const host = config.host;
  const reachable = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${reachable}:${boundPort}`;
}
