import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/types.js';

/**
 * One-click approve and deny links. Each is signed (HMAC-SHA256 with a server secret kept in the
 * store's meta, made once by whichever instance gets there first) over the request id, the action,
 * the amount and the expiry, so a link cannot be turned into another action, amount, request or
 * lifetime. A link is single-use because only an open request can be decided.
 */

export type LinkAction = 'approve' | 'deny';

export interface LinkParams {
  tokens: number;
  micros: number;
  /** Epoch ms after which the link no longer works. */
  expires: number;
}

const SECRET_KEY = 'request_link_secret';

/** The secret, read once per process (it never changes once claimed). */
export function linkSecret(store: Pick<Store, 'claimMeta'>): () => Promise<string> {
  let secret: Promise<string> | undefined;
  return () => {
    if (secret === undefined) {
      const claimed = store.claimMeta(SECRET_KEY, randomBytes(32).toString('base64url'));
      // A failed read (the database away for a moment) is not kept: the next call reads again.
      claimed.catch(() => {
        if (secret === claimed) secret = undefined;
      });
      secret = claimed;
    }
    return secret;
  };
}

export const linkSignature = (secret: string, id: string, action: LinkAction, p: LinkParams): string =>
  createHmac('sha256', secret).update(`lobe-quota request link\n${id}\n${action}\n${p.tokens}\n${p.micros}\n${p.expires}`).digest('hex');

export function linkUrl(base: string, secret: string, id: string, action: LinkAction, p: LinkParams): string {
  const query = new URLSearchParams({ tokens: String(p.tokens), micros: String(p.micros), expires: String(p.expires), sig: linkSignature(secret, id, action, p) });
  return `${base}/requests/${encodeURIComponent(id)}/${action}?${query.toString()}`;
}

const INTEGER = /^\d{1,16}$/;

/** The link's parameters from a query or form, or null when one is missing or malformed. */
export function readLinkParams(fields: Record<string, unknown>): (LinkParams & { sig: string }) | null {
  const { tokens, micros, expires, sig } = fields;
  if (typeof tokens !== 'string' || typeof micros !== 'string' || typeof expires !== 'string' || typeof sig !== 'string') return null;
  if (!INTEGER.test(tokens) || !INTEGER.test(micros) || !INTEGER.test(expires) || !/^[0-9a-f]{64}$/.test(sig)) return null;
  return { tokens: Number(tokens), micros: Number(micros), expires: Number(expires), sig };
}

/** Whether `sig` is this secret's signature of these parameters (compared in constant time). */
export function signatureMatches(secret: string, id: string, action: LinkAction, p: LinkParams & { sig: string }): boolean {
  const expected = Buffer.from(linkSignature(secret, id, action, p), 'hex');
  const given = Buffer.from(p.sig, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
