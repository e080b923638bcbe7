import type { CacheConfig } from '../../config/schema.js';
import type { RequestSubject } from '../../quota/scope.js';
import { isRecord } from '../../util/is-record.js';

/** Versioned, so a change of the encoding below can never read an entry written under another. */
const CANONICAL_VERSION = 'lobe-quota/response-cache/v1';

/**
 * Who shares the cache's entries: one user (default); one key of one user (a service key shared by
 * a LobeChat server still keeps each end user apart); or one project, whose members share answers
 * (a user without a project shares with no one).
 */
export function cacheScopeId(scope: CacheConfig['scope'], subject: RequestSubject): string {
  if (scope === 'key') return `key:${subject.keyId}/user:${subject.userId}`;
  if (scope === 'project' && subject.projectId !== null) return `project:${subject.projectId}`;
  return `user:${subject.userId}`;
}

export interface CanonicalParts {
  /** The dialect's name: the same body sent to two APIs is two requests. */
  api: string;
  /** cacheScopeId's answer. */
  scopeId: string;
  /** A stream and a whole answer to the same body are stored apart: their bytes differ. */
  streaming: boolean;
  /** The parsed request (with what its URL carries, such as Gemini's model). */
  body: Record<string, unknown>;
  /** Top-level fields that do not shape the answer (CacheProfile.ignoredFields). */
  ignoredFields: readonly string[];
  /**
   * The request headers the API forwards upstream (Anthropic's version and beta flags): they shape
   * the answer too. Absent or empty: none.
   */
  headers?: Record<string, string> | undefined;
}

/** Object keys sorted at every depth, so two spellings of one JSON object are one text. */
const sortedKeys = (_key: string, value: unknown): unknown =>
  isRecord(value) ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, value[k]])) : value;

/**
 * The bytes that name a request to the cache: everything that shapes its answer, in one spelling.
 * Both the entry's lookup id and the key its answer is encrypted under are derived from them
 * (answer-crypto.ts), so only someone who holds the whole request can find or read the answer.
 */
export function canonicalRequest({ api, scopeId, streaming, body, ignoredFields, headers }: CanonicalParts): Buffer {
  const kept: Record<string, unknown> = {};
  // `stream` is the `streaming` flag's: absent, false and null (or true and the API's default) are one request.
  for (const [field, value] of Object.entries(body)) if (field !== 'stream' && !ignoredFields.includes(field)) kept[field] = value;
  const parts: unknown[] = [api, scopeId, streaming ? 'stream' : 'whole', kept];
  // Header names lower-cased, so two spellings of one header are one request.
  if (headers && Object.keys(headers).length > 0) parts.push(Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])));
  return Buffer.from(`${CANONICAL_VERSION}\n${JSON.stringify(parts, sortedKeys)}`);
}
