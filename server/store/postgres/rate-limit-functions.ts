/**
 * Migration 7: request and concurrency limits, checked inside lq_reserve under the scope locks it
 * already takes, so several instances share them exactly. Tables: the admin's limits per subject
 * (`rate_limits`), the fixed UTC windows (`rate_counters`, one row per subject and span, started
 * over when the span moves on), and indexes to count a subject's live holds. lq_reserve of
 * migration 3 (metering-functions-3.ts) is replaced by the version below, which is that one with
 * one change only: when p.rates is present ({now, tokens, alreadyCounted, scopes: [{kind, id,
 * limit}]}, limit being the config's for the kind) it reads the limits and counts (lq_rate_checks),
 * decides (lq_rate_decide) before anything is held, and counts an admitted request
 * (lq_rate_count), answering `rates` (the checks) and, when refused, `rateLimited`.
 *
 * lq_rate_decide is quota/rate-limits.ts decideRates() step for step; PostgresStore runs that one
 * again on the checks that came back and refuses to go on if the two ever disagree.
 *
 * Released with migration 7: never edited, a change is a new migration.
 */
export const RATE_LIMITS_SQL = `
  -- A subject's limits over the config's for its kind: {field: n | null} (absent: the config's, null: none).
  CREATE TABLE rate_limits (
    scope      TEXT COLLATE "C" PRIMARY KEY,  -- 'key:ID', 'user:ID' or 'project:ID'
    limits     JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  -- Counted only for the spans a subject is limited in, and only by admitted requests.
  CREATE TABLE rate_counters (
    scope        TEXT COLLATE "C" NOT NULL,
    span         TEXT COLLATE "C" NOT NULL CHECK (span IN ('minute', 'hour', 'day')),
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    PRIMARY KEY (scope, span)
  );
  -- maxConcurrent counts a subject's live holds.
  CREATE INDEX holds_key ON holds(key_id);
  CREATE INDEX holds_user ON holds(user_id);
  CREATE INDEX holds_project ON holds(project_id) WHERE project_id IS NOT NULL;

  -- The request's limited scopes (those with any limit in force), each with the counts of the
  -- windows its limits need (0 elsewhere) and its live holds when maxConcurrent applies.
  CREATE FUNCTION lq_rate_checks(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    now_ms bigint := (p->>'now')::bigint;
    s record;
    lim jsonb;
    name text;
    rm bigint; tm bigint; rh bigint; rd bigint; conc bigint;
    c record;
    checks jsonb := '[]';
  BEGIN
    FOR s IN SELECT x.kind, x.id, x."limit", e.n FROM jsonb_array_elements(p->'scopes') WITH ORDINALITY AS e(value, n)
             CROSS JOIN LATERAL jsonb_to_record(e.value) AS x(kind text, id text, "limit" jsonb) ORDER BY e.n LOOP
      name := s.kind || ':' || s.id;
      -- The override's keys replace the config's, its nulls included, which then lift the limit.
      lim := jsonb_strip_nulls(COALESCE(s."limit", '{}') || COALESCE((SELECT r.limits FROM rate_limits r WHERE r.scope = name), '{}'));
      CONTINUE WHEN lim = '{}';
      rm := 0; tm := 0; rh := 0; rd := 0; conc := 0;
      IF lim ? 'requestsPerMinute' OR lim ? 'tokensPerMinute' THEN
        SELECT r.requests, r.tokens INTO c FROM rate_counters r WHERE r.scope = name AND r.span = 'minute' AND r.window_start = (now_ms / 60000) * 60000;
        IF FOUND THEN rm := c.requests; tm := c.tokens; END IF;
      END IF;
      IF lim ? 'requestsPerHour' THEN
        SELECT r.requests INTO c FROM rate_counters r WHERE r.scope = name AND r.span = 'hour' AND r.window_start = (now_ms / 3600000) * 3600000;
        IF FOUND THEN rh := c.requests; END IF;
      END IF;
      IF lim ? 'requestsPerDay' THEN
        SELECT r.requests INTO c FROM rate_counters r WHERE r.scope = name AND r.span = 'day' AND r.window_start = (now_ms / 86400000) * 86400000;
        IF FOUND THEN rd := c.requests; END IF;
      END IF;
      IF lim ? 'maxConcurrent' THEN
        conc := CASE s.kind
          WHEN 'key' THEN (SELECT count(*) FROM holds h WHERE h.key_id = s.id)
          WHEN 'user' THEN (SELECT count(*) FROM holds h WHERE h.user_id = s.id)
          ELSE (SELECT count(*) FROM holds h WHERE h.project_id = s.id) END;
      END IF;
      checks := checks || jsonb_build_array(jsonb_build_object(
        'scope', jsonb_build_object('kind', s.kind, 'id', s.id), 'limit', lim,
        'counts', jsonb_build_object('requestsMinute', rm, 'requestsHour', rh, 'requestsDay', rd, 'tokensMinute', tm, 'concurrent', conc)));
    END LOOP;
    RETURN checks;
  END $fn$;

  -- quota/rate-limits.ts decideRates(): null, or the limit that refuses one more request (of those
  -- that do, the one lasting longest; the first of equals).
  CREATE FUNCTION lq_rate_decide(p_checks jsonb, p_tokens bigint, p_now bigint, p_already boolean) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
  DECLARE
    c jsonb;
    f text;
    mx bigint;
    over boolean;
    span_ms bigint;
    retry bigint;
    refused jsonb := NULL;
  BEGIN
    FOR c IN SELECT e.value FROM jsonb_array_elements(p_checks) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
      FOREACH f IN ARRAY ARRAY['requestsPerMinute', 'requestsPerHour', 'requestsPerDay', 'tokensPerMinute', 'maxConcurrent'] LOOP
        mx := (c->'limit'->>f)::bigint;
        CONTINUE WHEN mx IS NULL OR (p_already AND f <> 'maxConcurrent');
        IF f = 'tokensPerMinute' THEN
          over := (c->'counts'->>'tokensMinute')::bigint + p_tokens > mx;
        ELSE
          over := (c->'counts'->>CASE f WHEN 'requestsPerMinute' THEN 'requestsMinute' WHEN 'requestsPerHour' THEN 'requestsHour'
                                         WHEN 'requestsPerDay' THEN 'requestsDay' ELSE 'concurrent' END)::bigint + 1 > mx;
        END IF;
        CONTINUE WHEN NOT over;
        IF f = 'maxConcurrent' THEN
          retry := 1000;
        ELSE
          span_ms := CASE f WHEN 'requestsPerHour' THEN 3600000 WHEN 'requestsPerDay' THEN 86400000 ELSE 60000 END;
          retry := (p_now / span_ms) * span_ms + span_ms - p_now;
        END IF;
        IF refused IS NULL OR retry > (refused->>'retryAfterMs')::bigint THEN
          refused := jsonb_build_object('scope', c->'scope', 'field', f, 'limit', mx, 'retryAfterMs', retry);
        END IF;
      END LOOP;
    END LOOP;
    RETURN refused;
  END $fn$;

  -- An admitted request, counted in each window its scopes are limited in (a window whose span
  -- moved on starts again from this request).
  CREATE FUNCTION lq_rate_count(p_checks jsonb, p_tokens bigint, p_now bigint) RETURNS void LANGUAGE sql AS $fn$
    INSERT INTO rate_counters (scope, span, window_start, requests, tokens)
    SELECT (e.value->'scope'->>'kind') || ':' || (e.value->'scope'->>'id'), s.span, (p_now / s.ms) * s.ms, 1, p_tokens
    FROM jsonb_array_elements(p_checks) AS e(value)
    CROSS JOIN (VALUES ('minute', 60000::bigint, ARRAY['requestsPerMinute', 'tokensPerMinute']),
                       ('hour', 3600000::bigint, ARRAY['requestsPerHour']),
                       ('day', 86400000::bigint, ARRAY['requestsPerDay'])) AS s(span, ms, fields)
    WHERE (e.value->'limit') ?| s.fields
    ON CONFLICT (scope, span) DO UPDATE SET
      requests = CASE WHEN rate_counters.window_start = excluded.window_start THEN rate_counters.requests + 1 ELSE 1 END,
      tokens = CASE WHEN rate_counters.window_start = excluded.window_start THEN rate_counters.tokens + excluded.tokens ELSE excluded.tokens END,
      window_start = excluded.window_start
  $fn$;

  CREATE OR REPLACE FUNCTION lq_reserve(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET jit = off SET enable_seqscan = off AS $fn$
  DECLARE
    h jsonb := p->'hold';
    d record;
    r jsonb := p->'rates';
    already boolean := COALESCE((p->'rates'->>'alreadyCounted')::boolean, false);
    checks jsonb;
    limited jsonb;
  BEGIN
    -- Holds only: a database crash may lose the last ones, as it loses the requests they hold for.
    PERFORM set_config('synchronous_commit', 'off', true);
    d := lq_locked_admission(p);
    IF d.states IS NULL THEN
      RETURN '{"stale": true}';
    END IF;
    IF r IS NOT NULL THEN
      checks := lq_rate_checks(r);
      limited := lq_rate_decide(checks, (r->>'tokens')::bigint, (r->>'now')::bigint, already);
      IF limited IS NOT NULL THEN
        RETURN d.states || jsonb_build_object('ok', false, 'rates', checks, 'rateLimited', limited);
      END IF;
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
      IF r IS NOT NULL AND NOT already THEN
        PERFORM lq_rate_count(checks, (r->>'tokens')::bigint, (r->>'now')::bigint);
      END IF;
    END IF;
    RETURN d.states || jsonb_build_object('ok', d.ok, 'blocking', d.blocking, 'granted', jsonb_build_array(d.tokens, d.micros, d.output_tokens))
      || CASE WHEN checks IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('rates', checks) END;
  END $fn$;
`;
