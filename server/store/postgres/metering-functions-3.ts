/**
 * Migration 3: the holds of live requests carry what recovery needs (their pending charge and the
 * output delivered so far), the ledger its overrun count and recovered entries, alerts the
 * `overrun` kind. lq_reserve, lq_extend and lq_settle_one of migration 2 (metering-functions.ts) are
 * replaced by the versions below, which are theirs with these changes only:
 *
 * - lq_reserve stores p.hold.pending (JSON text, absent for a hold without one) and updated_at.
 * - lq_extend stores p.delivered (the request's output count, never lowered) and updated_at = p.now.
 * - lq_settle_one writes the entry's overrun_tokens (0 when an older instance sends none), and
 *   asks for a transaction of its own (`{"alerts": true}`) when the settle carries an overrun whose
 *   alert is not recorded yet: p.overrun {key, windowStart} names that alert's row, which
 *   alert-planning.ts overrunAlertRow() builds (at most one per model and clock hour).
 *
 * Released with migration 3: never edited, a change is a new migration.
 */
export const MIGRATION_3_SQL = `
  ALTER TABLE holds
    ADD COLUMN pending          TEXT COLLATE "C",          -- JSON PendingCharge; NULL: released, never recovered
    ADD COLUMN delivered_tokens BIGINT NOT NULL DEFAULT 0, -- output counted when the hold last grew
    ADD COLUMN updated_at       BIGINT NOT NULL DEFAULT 0, -- when it last grew (or was taken)
    ADD COLUMN claimed_at       BIGINT;                    -- when an instance took it over from a dead one

  -- Constraints that only accept more, added NOT VALID: every stored row passed the narrower one, so
  -- there is nothing to check, and a validating scan would hold the ledger's exclusive lock (every
  -- instance's settles wait) for as long as a million rows take. New rows are checked as always.
  ALTER TABLE ledger ADD COLUMN overrun_tokens BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE ledger ADD CONSTRAINT ledger_overrun_tokens_check CHECK (overrun_tokens >= 0) NOT VALID;
  ALTER TABLE ledger DROP CONSTRAINT ledger_source_check;
  ALTER TABLE ledger ADD CONSTRAINT ledger_source_check CHECK (source IN ('upstream', 'estimated', 'recovered')) NOT VALID;
  -- outcome has no CHECK: 'upstream_error' and 'interrupted' need none.
  ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
  ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('threshold', 'projected', 'anomaly', 'overrun')) NOT VALID;

  CREATE OR REPLACE FUNCTION lq_reserve(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    h jsonb := p->'hold';
    d record;
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    d := lq_locked_admission(p);
    IF d.states IS NULL THEN
      RETURN '{"stale": true}';
    END IF;
    IF d.ok THEN
      INSERT INTO holds (id, instance_id, user_id, project_id, key_id, tokens, micros, output_tokens, created_at, expires_at, pending, updated_at)
      VALUES (h->>'id', h->>'instance', h->>'user', h->>'project', h->>'key', d.tokens, d.micros, d.output_tokens,
        (h->>'createdAt')::bigint, (h->>'expiresAt')::bigint, h->>'pending', (h->>'createdAt')::bigint)
      ON CONFLICT (id) DO NOTHING;
      IF NOT FOUND THEN
        RETURN '{"exists": true}';
      END IF;
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT DISTINCT h->>'id', w.key, d.tokens, d.micros FROM jsonb_to_recordset(p->'budgets') AS w(key text);
    END IF;
    RETURN d.states || jsonb_build_object('ok', d.ok, 'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens));
  END $fn$;

  CREATE OR REPLACE FUNCTION lq_extend(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    grown_id text := p->>'holdId';
    amount_t bigint := (p->'quote'->>'tokens')::bigint;
    amount_m bigint := (p->'quote'->>'micros')::bigint;
    before holds;
    grown holds;
    d record;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO before FROM holds WHERE id = grown_id;
    IF NOT FOUND THEN
      RETURN '{"unknown": true}';
    END IF;
    -- The caller locks the scopes of the subject it believes the hold has: it must be this one.
    IF before.user_id IS DISTINCT FROM p->'subject'->>'user' OR before.project_id IS DISTINCT FROM p->'subject'->>'project'
       OR before.key_id IS DISTINCT FROM p->'subject'->>'key' THEN
      RETURN jsonb_build_object('subject', jsonb_build_object('user', before.user_id, 'project', before.project_id, 'key', before.key_id));
    END IF;
    d := lq_locked_admission(p);
    IF d.states IS NULL THEN
      RETURN '{"stale": true}';
    END IF;
    IF d.ok THEN
      -- Released or expired while this waited for the lock: nothing to grow.
      UPDATE holds SET tokens = tokens + amount_t, micros = micros + amount_m, output_tokens = output_tokens + amount_t,
        expires_at = (p->>'expiresAt')::bigint,
        delivered_tokens = GREATEST(delivered_tokens, COALESCE((p->>'delivered')::bigint, delivered_tokens)),
        updated_at = (p->>'now')::bigint
      WHERE id = grown_id RETURNING * INTO grown;
      IF NOT FOUND THEN
        RETURN '{"unknown": true}';
      END IF;
      INSERT INTO hold_budgets (hold_id, budget_key, tokens, micros)
      SELECT DISTINCT grown_id, w.key, amount_t, amount_m FROM jsonb_to_recordset(p->'budgets') AS w(key text)
      ON CONFLICT (hold_id, budget_key) DO UPDATE SET tokens = hold_budgets.tokens + excluded.tokens, micros = hold_budgets.micros + excluded.micros;
    END IF;
    RETURN d.states || jsonb_build_object('ok', d.ok, 'blocking', d.blocking, 'hold', to_jsonb(grown));
  END $fn$;

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
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, overrun_tokens)
    SELECT request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, COALESCE(overrun_tokens, 0)
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
