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
 * - The entry's upstream is written by lq_settle_one of migration 8 (metering-functions-8.ts),
 *   released with this one: until then (inside the one transaction that migrates), the column is
 *   NULL for every row.
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
`;
