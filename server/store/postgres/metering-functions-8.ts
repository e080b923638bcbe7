/**
 * Migration 8: response-cache hits in the ledger, as SQLite's migration 10. A hit is an entry with
 * source `cache`; the ledger gains `saved_tokens` and `saved_micros` (what a hit did not cost; 0
 * for existing rows and every other entry), the rollup those two and `cache_hits`; the report index
 * is rebuilt to cover them and the source; lq_settle_one of migration 5 (metering-functions-5.ts) is
 * replaced by the version below, which is that one with two changes only: it writes the entry's
 * upstream (migration 6's column) and its two saved counts (0 when an older instance sends none).
 *
 * Released with migration 8: never edited, a change is a new migration.
 */
export const MIGRATION_8_SQL = `
  -- Metadata only, the constraints NOT VALID, as migration 5 did: every stored row holds the default.
  ALTER TABLE ledger DROP CONSTRAINT ledger_source_check;
  ALTER TABLE ledger ADD CONSTRAINT ledger_source_check CHECK (source IN ('upstream', 'estimated', 'recovered', 'cache')) NOT VALID;
  ALTER TABLE ledger
    ADD COLUMN saved_tokens BIGINT NOT NULL DEFAULT 0, -- what a response-cache hit did not cost, in tokens
    ADD COLUMN saved_micros BIGINT NOT NULL DEFAULT 0; -- and in micro-dollars
  ALTER TABLE ledger ADD CONSTRAINT ledger_saved_tokens_check CHECK (saved_tokens >= 0) NOT VALID;
  ALTER TABLE ledger ADD CONSTRAINT ledger_saved_micros_check CHECK (saved_micros >= 0) NOT VALID;
  ALTER TABLE ledger_rollup
    ADD COLUMN cache_hits   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN saved_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN saved_micros BIGINT NOT NULL DEFAULT 0;

  -- Reports count hits and sum the savings: the covering index is rebuilt with them.
  DROP INDEX ledger_report;
  CREATE INDEX ledger_report ON ledger(at, user_id, project_id, key_id, model)
    INCLUDE (input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros, source, saved_tokens, saved_micros);

  CREATE OR REPLACE FUNCTION lq_settle_one(p jsonb, p_in_transaction boolean) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    scopes text[] := ARRAY(SELECT jsonb_array_elements_text(p->'scopes'));
    e jsonb := p->'entry';
    added_t bigint := (e->>'input_tokens')::bigint + (e->>'output_tokens')::bigint;
    added_m bigint := (e->>'cost_micros')::bigint;
    entry ledger;
    sums record;
  BEGIN
    IF lq_budget_fingerprint(scopes) IS DISTINCT FROM p->>'fingerprint' THEN
      RETURN '{"stale": true}';
    END IF;
    SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
    IF FOUND THEN
      DELETE FROM holds WHERE id = e->>'request_id';
      RETURN jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry));
    END IF;
    sums := lq_bucket_sums(p->'budgets');
    -- An overrun fires its alert once per model and hour: only the first settle of the hour to
    -- carry one needs the transaction that records it (alert-planning.ts overrunAlertRow).
    IF NOT p_in_transaction AND (
         ((added_t > 0 OR added_m > 0)
          AND lq_alerts_due(p->'budgets', lq_used(p->'budgets', sums.tokens), lq_used(p->'budgets', sums.micros),
                            added_t, added_m, (e->>'at')::bigint))
         OR (p->'overrun' IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.budget_key = p->'overrun'->>'key'
                               AND a.window_start = (p->'overrun'->>'windowStart')::bigint AND a.kind = 'overrun' AND a.threshold = 0))) THEN
      RETURN '{"alerts": true}';
    END IF;
    INSERT INTO ledger (request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens, cache_write_tokens,
      cache_write_1h_tokens, upstream, saved_tokens, saved_micros)
    SELECT request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, COALESCE(overrun_tokens, 0),
      COALESCE(cache_write_tokens, 0), COALESCE(cache_write_1h_tokens, 0), upstream, COALESCE(saved_tokens, 0), COALESCE(saved_micros, 0)
    FROM jsonb_populate_record(NULL::ledger, e)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING * INTO entry;
    IF NOT FOUND THEN
      -- Settled meanwhile under another subject's locks: the first settle stands.
      SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
      DELETE FROM holds WHERE id = e->>'request_id';
      RETURN jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry));
    END IF;
    -- A counter normally exists (lq_bucket_sums stored every bucket it read) and is added to; one
    -- deleted meanwhile (retired by an instance whose clock is ahead) is written again whole.
    INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
    SELECT w.key, w.start, w."end", w.retires, sums.tokens[w.i + 1] + added_t, sums.micros[w.i + 1] + added_m
    FROM lq_buckets(p->'budgets') AS w WHERE w.current
    ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens + added_t, micros = usage_counters.micros + added_m;
    DELETE FROM holds WHERE id = e->>'request_id';
    RETURN jsonb_build_object('entry', to_jsonb(entry), 'tokens', sums.tokens, 'micros', sums.micros);
  END $fn$;
`;
