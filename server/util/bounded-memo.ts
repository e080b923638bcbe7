/**
 * Values of a pure computation remembered by key, at most `max` of them. Keys often come from
 * clients (model ids, keys, texts), so the memo is bounded; when full it is cleared whole, which
 * costs one recomputation per live key and keeps no recency bookkeeping on the hot path.
 */
export class BoundedMemo<K, V> {
  private readonly values = new Map<K, V>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.values.size;
  }

  /** The value remembered under `key`, or `compute(key)` remembered under it. */
  through(key: K, compute: (key: K) => V): V {
    const known = this.values.get(key);
    if (known !== undefined || this.values.has(key)) return known as V;
    const value = compute(key);
    if (this.values.size >= this.max) this.values.clear();
    this.values.set(key, value);
    return value;
  }
}
