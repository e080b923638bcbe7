/**
 * The deepest nesting a request body may have. Real requests stay far below it (messages → content
 * parts → a tool's JSON schema is a dozen levels); JSON.parse builds any depth without complaint,
 * but JSON.stringify and every recursive walk after it do not, so a body is refused at the edge
 * rather than failing half-way through a request that already holds budget.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * Whether a parsed JSON value nests objects and arrays deeper than `maxDepth` (a scalar is depth 0,
 * `[]` and `{}` depth 1). Iterative, so no input can overflow the stack, and it stops at the first
 * level past the bound: the work is at most the number of containers and elements above it.
 */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  let level: unknown[] = [value];
  for (let depth = 0; level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const item of level) {
      if (typeof item !== 'object' || item === null) continue;
      if (depth >= maxDepth) return true;
      const children = Array.isArray(item) ? item : Object.values(item);
      for (const child of children) if (typeof child === 'object' && child !== null) next.push(child);
    }
    level = next;
  }
  return false;
}
