/**
 * Migration 6: budgets limited to some models or routing to others, and the upstream (provider
 * account) that served each entry, as SQLite's migration 8.
 *
 * - budgets gain `models` (JSON array of ids and globs; NULL: every model) and `fallback` (JSON
 *   array of {at, to}). The set of models is part of a budget's identity, written into `period`
 *   (see budgetPeriod), so UNIQUE (scope, period) keeps meaning one budget per scope and period.
 * - ledger and ledger_rollup gain `upstream` (the rollup's primary key grows by it, '' for none), so
 *   the budgets of scope upstream:NAME count what that upstream served.
 * - lq_bucket_sums (migration 2) is replaced by one that counts a budget naming models from the
 *   entries of those models only: each budget argument carries `models`, a regular expression of
 *   them (modelsRegExpSource) or null. Otherwise it is that function unchanged.
 * - lq_admit (migration 2) is replaced by one that lets a free request (quote.free: a model priced
 *   at $0) past a dollar limit, and knows the `whole` mode of an upstream's budget (it never
 *   shrinks an answer, and has no ceiling), as admission.ts does; otherwise that function unchanged.
 * - lq_settle_one (migration 5) is replaced by one that writes the entry's upstream, and is
 *   otherwise that function unchanged.
 *
 * Released with migration 6: never edited, a change is a new migration.
 */
export const MIGRATION_6_SQL = `
  ALTER TABLE budgets ADD COLUMN models TEXT COLLATE "C", ADD COLUMN fallback TEXT COLLATE "C";

  -- Metadata only: no default, every existing row reads NULL (served before upstreams were recorded).
  -- No index of its own: an upstream's counter is counted from the ledger once per bucket, through
  -- the time index, as the global budget's is.
  ALTER TABLE ledger ADD COLUMN upstream TEXT COLLATE "C";

  ALTER TABLE ledger_rollup ADD COLUMN upstream TEXT COLLATE "C" NOT NULL DEFAULT '';
  ALTER TABLE ledger_rollup DROP CONSTRAINT ledger_rollup_pkey;
  ALTER TABLE ledger_rollup ADD PRIMARY KEY (slot_at, user_id, project_id, key_id, model, upstream);
  CREATE INDEX ledger_rollup_upstream ON ledger_rollup(upstream, slot_at) WHERE upstream <> '';

  CREATE OR REPLACE FUNCTION lq_bucket_sums(p_budgets jsonb, OUT tokens bigint[], OUT micros bigint[]) LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    r record;
    t bigint;
    m bigint;
    models text;
  BEGIN
    SELECT COALESCE(array_agg(c.tokens ORDER BY w.i), '{}'), COALESCE(array_agg(c.micros ORDER BY w.i), '{}') INTO tokens, micros
    FROM lq_buckets(p_budgets) AS w
    LEFT JOIN LATERAL (SELECT u.tokens, u.micros FROM usage_counters u WHERE u.budget_key = w.key AND u.bucket_start = w.start OFFSET 0) c ON true;
    FOR r IN SELECT * FROM lq_buckets(p_budgets) AS w WHERE tokens[w.i + 1] IS NULL LOOP
      -- The budget's own argument (its index b is its place in the array).
      models := p_budgets->(r.b)->>'models';
      EXECUTE format(
        'SELECT SUM(t)::bigint, SUM(m)::bigint FROM (
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS t, COALESCE(SUM(cost_micros), 0) AS m FROM ledger WHERE %1$s %2$s at >= $2 AND at < $3
           UNION ALL
           SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM ledger_rollup WHERE %1$s %2$s slot_at >= $2 AND slot_at < $3) AS parts',
        CASE WHEN r.col IS NULL THEN '' ELSE format('%I = $1 AND', r.col) END,
        CASE WHEN models IS NULL THEN '' ELSE 'model ~ $4 AND' END)
      INTO t, m USING r.id, r.start, COALESCE(r."end", 9007199254740991), models;
      INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
      VALUES (r.key, r.start, r."end", r.retires, t, m) ON CONFLICT DO NOTHING;
      tokens[r.i + 1] := t;
      micros[r.i + 1] := m;
    END LOOP;
  END $fn$;

  CREATE OR REPLACE FUNCTION lq_admit(p_budgets jsonb, used_t bigint[], used_m bigint[], res_t bigint[], res_m bigint[], p_quote jsonb,
    OUT ok boolean, OUT blocking int, OUT tokens bigint, OUT micros bigint, OUT output_tokens bigint) LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    b record;
    q_tokens float8 := (p_quote->>'tokens')::float8;
    q_micros float8 := (p_quote->>'micros')::float8;
    want float8 := COALESCE((p_quote->>'want')::float8, 0);
    least_useful float8 := COALESCE((p_quote->>'min')::float8, 0);
    price float8 := COALESCE((p_quote->>'price')::float8, 0);
    ceiling_scale float8 := (p_quote->>'ceiling')::float8;
    free boolean := COALESCE((p_quote->>'free')::boolean, false);
    scale float8;
    room float8;
    micros_room float8;
    tightest int := -1;
    tightest_room float8 := 'Infinity';
    downgrade int := -1;
    granted float8;
  BEGIN
    FOR b IN SELECT * FROM jsonb_to_recordset(p_budgets) AS x(i int, "onLimit" text, "limitTokens" bigint, "limitMicros" bigint) ORDER BY x.i LOOP
      room := 'Infinity';
      IF b."onLimit" <> 'alert-only' THEN
        scale := CASE WHEN b."onLimit" = 'downgrade' AND ceiling_scale IS NOT NULL THEN ceiling_scale ELSE 1 END;
        IF b."limitTokens" IS NOT NULL THEN
          room := floor(b."limitTokens"::float8 * scale) - used_t[b.i + 1] - res_t[b.i + 1] - q_tokens;
        END IF;
        IF b."limitMicros" IS NOT NULL AND NOT free THEN
          micros_room := floor(b."limitMicros"::float8 * scale) - used_m[b.i + 1] - res_m[b.i + 1] - q_micros;
          room := LEAST(room, CASE WHEN micros_room < 0 THEN -1 WHEN price > 0 THEN floor(micros_room * 1000000 / price) ELSE 'Infinity' END);
        END IF;
      END IF;
      IF room < tightest_room THEN
        tightest_room := room;
        tightest := b.i;
      END IF;
      IF downgrade < 0 AND (b."onLimit" = 'whole' OR (b."onLimit" = 'downgrade' AND ceiling_scale IS NULL)) AND room < want THEN
        downgrade := b.i;
      END IF;
    END LOOP;
    IF tightest_room < least_useful OR tightest_room < 0 THEN
      ok := false; blocking := tightest; RETURN;
    END IF;
    IF downgrade >= 0 THEN
      ok := false; blocking := downgrade; RETURN;
    END IF;
    granted := LEAST(want, tightest_room);
    ok := true;
    tokens := q_tokens + granted;
    micros := q_micros + ceil(granted * price / 1000000);
    output_tokens := granted;
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
      cache_write_1h_tokens, upstream)
    SELECT request_id, at, user_id, project_id, key_id, model, input_tokens, output_tokens, cached_tokens,
      reasoning_tokens, cost_micros, source, outcome, latency_ms, session_id, tags, COALESCE(overrun_tokens, 0),
      COALESCE(cache_write_tokens, 0), COALESCE(cache_write_1h_tokens, 0), upstream
    FROM jsonb_populate_record(NULL::ledger, e)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING * INTO entry;
    IF NOT FOUND THEN
      SELECT * INTO entry FROM ledger WHERE request_id = e->>'request_id';
      DELETE FROM holds WHERE id = e->>'request_id';
      RETURN jsonb_build_object('duplicate', true, 'entry', to_jsonb(entry));
    END IF;
    INSERT INTO usage_counters (budget_key, bucket_start, bucket_end, retires_at, tokens, micros)
    SELECT w.key, w.start, w."end", w.retires, sums.tokens[w.i + 1] + added_t, sums.micros[w.i + 1] + added_m
    FROM lq_buckets(p->'budgets') AS w WHERE w.current
    ON CONFLICT (budget_key, bucket_start) DO UPDATE SET tokens = usage_counters.tokens + added_t, micros = usage_counters.micros + added_m;
    DELETE FROM holds WHERE id = e->>'request_id';
    RETURN jsonb_build_object('entry', to_jsonb(entry), 'tokens', sums.tokens, 'micros', sums.micros);
  END $fn$;
`;
