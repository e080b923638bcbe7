import type { Config } from '../config/load.js';
import type { Clock } from '../clock.js';
import type { ResponseCache } from '../proxy/response-cache/response-cache.js';
import type { TokenCounter } from '../proxy/token-count.js';
import type { Upstreams } from '../proxy/upstreams.js';
import type { KeyIdentity, Store } from '../store/types.js';

/** What route handlers are given: no module-level singletons. */
export interface Services {
  store: Store;
  config: Config;
  clock: Clock;
  /** SHA-256 of the admin token (see auth/admin-token.ts). */
  adminTokenHash: string;
  /** Connection pools to the model upstreams (closed by whoever made them). */
  upstreams: Upstreams;
  /** The proxy's token counter; by default one of its own per app (tests pass one to watch it). */
  tokens?: TokenCounter;
  /**
   * The response cache (closed by whoever made it); by default, with `cache.enabled`, one in
   * memory per app (main opens the one in dataDir).
   */
  responseCache?: ResponseCache;
}

/** Who is calling, once `authenticate` has run. */
export type Caller = { kind: 'admin' } | { kind: 'user'; identity: KeyIdentity };

export interface AppEnv {
  Variables: { caller: Caller };
}
