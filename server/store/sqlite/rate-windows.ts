import { RATE_SPANS, spanStart, type RateSpan } from '../../quota/rate-limits.js';

interface Window {
  start: number;
  requests: number;
  tokens: number;
}

/** A window as the `rate_windows` table keeps it across a clean restart. */
export interface RateWindowRow {
  scope: string;
  span: RateSpan;
  window_start: number;
  requests: number;
  tokens: number;
}

/** Subjects kept before windows that have ended are dropped. */
const PRUNE_AT = 100_000;

/**
 * The fixed rate windows of an embedded store, in memory: one process owns the file, so memory is
 * exactly what every request of it sees, and admission (synchronous, see SqliteStore.reserve)
 * counts a request without a disk write. A window is one row per subject and span, started again
 * when its span moves on.
 */
export class RateWindows {
  private readonly bySubject = new Map<string, Partial<Record<RateSpan, Window>>>();

  /** Requests (and, for the minute, tokens) counted in the window of `span` at `now`. */
  read(scope: string, span: RateSpan, now: number): { requests: number; tokens: number } {
    const window = this.bySubject.get(scope)?.[span];
    return window && window.start === spanStart(span, now) ? window : { requests: 0, tokens: 0 };
  }

  count(scope: string, spans: readonly RateSpan[], tokens: number, now: number): void {
    let windows = this.bySubject.get(scope);
    if (!windows) {
      if (this.bySubject.size >= PRUNE_AT) this.prune(now);
      this.bySubject.set(scope, (windows = {}));
    }
    for (const span of spans) {
      const start = spanStart(span, now);
      const window = windows[span];
      if (window && window.start === start) {
        window.requests += 1;
        window.tokens += tokens;
      } else {
        windows[span] = { start, requests: 1, tokens };
      }
    }
  }

  rows(): RateWindowRow[] {
    const rows: RateWindowRow[] = [];
    for (const [scope, windows] of this.bySubject) {
      for (const [span, w] of Object.entries(windows) as Array<[RateSpan, Window]>) rows.push({ scope, span, window_start: w.start, requests: w.requests, tokens: w.tokens });
    }
    return rows;
  }

  load(rows: readonly RateWindowRow[]): void {
    for (const r of rows) {
      const windows = this.bySubject.get(r.scope) ?? {};
      windows[r.span] = { start: r.window_start, requests: r.requests, tokens: r.tokens };
      this.bySubject.set(r.scope, windows);
    }
  }

  /** Drops the subjects whose every window has ended. */
  private prune(now: number): void {
    for (const [scope, windows] of this.bySubject) {
      const live = (Object.entries(windows) as Array<[RateSpan, Window]>).some(([span, w]) => w.start + RATE_SPANS[span] > now);
      if (!live) this.bySubject.delete(scope);
    }
  }
}
