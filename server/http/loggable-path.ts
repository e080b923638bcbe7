/**
 * A request's path as lobe-quota's logs and error messages show it. A key-scoped base URL
 * (`/ollama/k/<lq-key>/…`, for clients that cannot send a header) carries a user's key, which
 * lobe-quota never writes down: the segment after `/k/` is masked, and so is anything else in the
 * path that looks like one of our keys.
 */
export function loggablePath(path: string): string {
  return path.replace(KEY_SEGMENT, '/k/…').replace(KEY_LIKE, 'lq-…');
}

const KEY_SEGMENT = /\/k\/[^/]*/g;
const KEY_LIKE = /lq-[A-Za-z0-9_-]+/g;
