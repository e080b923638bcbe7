import { z } from 'zod';

/**
 * Model ids and globs of them, as the config names models (`upstreams[].models`, `prices` keys):
 * `*` matches any run of characters (none included); every other character matches itself.
 */

export const isModelGlob = (pattern: string): boolean => pattern.includes('*');

export const modelGlobToRegExp = (pattern: string): RegExp =>
  new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/** How specific a glob is: the characters it fixes (`gpt-4o-*` beats `gpt-*`). */
export const globSpecificity = (pattern: string): number => pattern.replaceAll('*', '').length;

export const MAX_MODEL_KEY_CHARS = 256;

/**
 * A model id or glob as a config key: no whitespace and no control characters. Model ids have
 * neither (`gpt-4o`, `llama3.1:8b`, `accounts/x/models/y`, `claude-3@2024`); a key with one is a
 * typo or a paste that would silently never match.
 */
export const modelKeySchema = z
  .string()
  .min(1, 'must be a model id or a glob, not empty')
  .max(MAX_MODEL_KEY_CHARS, `must be at most ${MAX_MODEL_KEY_CHARS} characters`)
  .regex(/^[^\s\u0000-\u001f\u007f-\u009f]*$/, 'must be a model id or a glob (`*` for any characters), without whitespace or control characters');

/** Why `key` names no model (every reason, as the config loader lists them), or null. */
export function modelKeyProblem(key: string): string | null {
  const parsed = modelKeySchema.safeParse(key);
  return parsed.success ? null : parsed.error.issues.map((issue) => issue.message).join('; ');
}
