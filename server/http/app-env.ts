import type { Config } from '../config/load.js';
import type { Clock } from '../clock.js';
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
}

/** Who is calling, once `authenticate` has run. */
export type Caller = { kind: 'admin' } | { kind: 'user'; identity: KeyIdentity };

export interface AppEnv {
  Variables: { caller: Caller };
}
