import { Pool, type Dispatcher } from 'undici';
import { modelGlobToRegExp } from '../util/model-pattern.js';
import { UPSTREAM_KEY_HEADERS, type UpstreamApi } from './upstream-api.js';

/** How an upstream API takes its key: the header, and what stands before the key in it. */
export interface KeyHeader {
  name: string;
  prefix: string;
}

export interface UpstreamConfig {
  name: string;
  /** e.g. https://api.openai.com/v1 */
  baseUrl: string;
  /** The upstream's own key. It never leaves the server. */
  apiKey: string | undefined;
  /** The wire format it speaks (default `openai`). */
  api?: UpstreamApi;
  /** How the key goes out (default: as the API's own SDK sends it). */
  keyHeader?: KeyHeader;
  /** Model ids this upstream serves; `*` matches any run of characters. */
  models: string[];
}

export interface UpstreamTimeouts {
  connectMs: number;
  /** Until the response headers arrive. */
  firstByteMs: number;
  /** Between two chunks of the body. */
  idleMs: number;
}

/** One upstream: a keep-alive connection pool to its origin. */
export class Upstream {
  readonly name: string;
  readonly api: UpstreamApi;
  /** The key's header, written once: null when the upstream takes no key. */
  private readonly key: { name: string; value: string } | null;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly patterns: RegExp[];

  constructor(config: UpstreamConfig, timeouts: UpstreamTimeouts) {
    const url = new URL(config.baseUrl);
    this.name = config.name;
    this.api = config.api ?? 'openai';
    const keyHeader = config.keyHeader ?? UPSTREAM_KEY_HEADERS[this.api];
    this.key = config.apiKey ? { name: keyHeader.name, value: `${keyHeader.prefix}${config.apiKey}` } : null;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.patterns = config.models.map(modelGlobToRegExp);
    this.pool = new Pool(url.origin, {
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: timeouts.connectMs },
      headersTimeout: timeouts.firstByteMs,
      bodyTimeout: timeouts.idleMs,
    });
  }

  serves(model: string): boolean {
    return this.patterns.some((p) => p.test(model));
  }

  /** A request to `path` under the upstream's base URL (e.g. `/chat/completions`), with its key. */
  request(path: string, options: { method: 'GET' | 'POST'; body?: string; signal?: AbortSignal; headers?: Record<string, string> }) {
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream', ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.key) headers[this.key.name] = this.key.value;
    const request: Dispatcher.RequestOptions = { path: `${this.basePath}${path}`, method: options.method, headers, body: options.body ?? null };
    if (options.signal) request.signal = options.signal;
    return this.pool.request(request);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * The configured upstreams in order; a request goes to the first one that serves its model in its
 * format, and fails over to the next (see routing.ts).
 */
export class Upstreams {
  readonly list: Upstream[];

  constructor(configs: UpstreamConfig[], timeouts: UpstreamTimeouts) {
    this.list = configs.map((c) => new Upstream(c, timeouts));
  }

  static fromConfig(config: { upstreams: UpstreamConfig[]; proxy: { connectTimeoutMs: number; firstByteTimeoutMs: number; idleTimeoutMs: number } }): Upstreams {
    return new Upstreams(config.upstreams, {
      connectMs: config.proxy.connectTimeoutMs,
      firstByteMs: config.proxy.firstByteTimeoutMs,
      idleMs: config.proxy.idleTimeoutMs,
    });
  }

  forModel(model: string, api: UpstreamApi = 'openai'): Upstream | undefined {
    return this.list.find((u) => u.api === api && u.serves(model));
  }

  /** Every upstream that serves `model` in `api`, in the configured order: the first, then where a request fails over to. */
  allForModel(model: string, api: UpstreamApi = 'openai'): Upstream[] {
    return this.list.filter((u) => u.api === api && u.serves(model));
  }

  byName(name: string): Upstream | undefined {
    return this.list.find((u) => u.name === name);
  }

  async close(): Promise<void> {
    await Promise.all(this.list.map((u) => u.close()));
  }
}
