/**
 * The store could not be reached (or did not answer in time) after its retries. The proxy answers
 * 503 rather than admit traffic it cannot meter (unless the config says fail-open), and /health
 * reports it, so a load balancer stops sending requests to an instance that cannot count them.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StoreUnavailableError';
  }
}

/** What a client is told when the store is unavailable (with a 503 and `Retry-After: 1`). */
export const STORE_UNAVAILABLE_MESSAGE = 'lobe-quota cannot reach its database, so it cannot meter this request; try again shortly.';
