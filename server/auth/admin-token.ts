import type { Store } from '../store/types.js';
import { hashSecret, newAdminToken } from './secrets.js';

const META_KEY = 'admin_token_hash';

export interface AdminToken {
  hash: string;
  /** The token made on this start, to be printed once; null when it came from ADMIN_TOKEN or an earlier start. */
  generated: string | null;
}

/**
 * ADMIN_TOKEN wins when set. Otherwise the first start makes a token, stores only its hash and hands
 * it back once for printing; later starts (and other instances) reuse the stored hash.
 */
export async function ensureAdminToken(store: Store, fromEnv: string | undefined): Promise<AdminToken> {
  if (fromEnv !== undefined) return { hash: hashSecret(fromEnv), generated: null };
  const stored = await store.getMeta(META_KEY);
  if (stored !== null) return { hash: stored, generated: null };
  const token = newAdminToken();
  const hash = hashSecret(token);
  // Replicas starting together on one database: the first to store its hash wins, and only it
  // prints its token; the others use the winner's.
  const kept = await store.claimMeta(META_KEY, hash);
  return kept === hash ? { hash, generated: token } : { hash: kept, generated: null };
}
