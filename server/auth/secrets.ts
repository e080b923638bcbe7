import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys and tokens are 192 random bits, so a fast hash is enough to store them safely (no password
 * stretching needed) and lets a key be found by its hash in one index lookup.
 */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const USER_KEY_PREFIX = 'lq-';
export const ADMIN_TOKEN_PREFIX = 'lqa-';

const randomPart = (): string => randomBytes(24).toString('base64url');

export function newUserKey(): { secret: string; prefix: string } {
  const secret = `${USER_KEY_PREFIX}${randomPart()}`;
  return { secret, prefix: secret.slice(0, USER_KEY_PREFIX.length + 6) };
}

export const newAdminToken = (): string => `${ADMIN_TOKEN_PREFIX}${randomPart()}`;

/** A short random id, e.g. `key_4f9aQ2xLbT0c`. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;

/** Compares a presented secret with a stored hash in constant time. */
export function matchesHash(secret: string, expectedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(expectedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}
