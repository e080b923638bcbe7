import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { budgetSetText, type PutBudgetJson } from './budget-text.js';
import { reportBound } from './report-range.js';
import { formatTable } from './table.js';
import { MAX_LINE_CHARS, terminalText } from './terminal-text.js';

/** What the CLI touches, passed in so tests run it in-process against a real server. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch?: typeof fetch;
}

interface GlobalOptions {
  url: string;
  token: string | undefined;
  json: boolean;
}

/** A failed admin API call, carrying the server's message. */
class RequestFailed extends Error {}

/** An argument the CLI checks itself, once other options it depends on are known (usage --from with --tz). */
class BadArgument extends Error {}

const positiveInt = (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
};

/** A rate limit's value on the command line: a whole number from 1, or "none" (no limit; null in the body). */
const limitOrNone = (value: string): number | 'none' => {
  if (value === 'none') return value;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number from 1, or none');
  return Number(value);
};

interface RateLimitJson {
  scope: string;
  effective: Record<string, number>;
}

const RATE_LIMIT_WORDS: Record<string, string> = {
  requestsPerMinute: 'requests/minute',
  requestsPerHour: 'requests/hour',
  requestsPerDay: 'requests/day',
  tokensPerMinute: 'tokens/minute',
  maxConcurrent: 'in flight',
};

/** "60 requests/minute, 2 in flight", or "no limits". */
const describeRateLimit = (limit: Record<string, number>): string =>
  Object.entries(RATE_LIMIT_WORDS)
    .filter(([field]) => limit[field] !== undefined)
    .map(([field, words]) => `${(limit[field] as number).toLocaleString('en-US')} ${words}`)
    .join(', ') || 'no limits';

/** A grant as the admin API shows it (`grantView`). */
interface GrantJson {
  id: string;
  scope: string;
  tokens: number;
  usd: number;
  endsAt: string;
  decidedBy: string;
  reason: string | null;
}

/** An increase request as the admin API shows it (`requestView`). */
interface RequestJson {
  id: string;
  userId: string;
  scope: string;
  amountTokens: number;
  amountUsd: number;
  reason: string | null;
  state: string;
  createdAt: string;
  grantedTokens: number | null;
  grantedUsd: number | null;
}

/** "+20,000 tokens" or "+$5.00": a request is in its budget's unit. */
const requestAmount = (tokens: number, usd: number): string => (tokens > 0 ? `+${tokens.toLocaleString('en-US')} tokens` : `+$${usd.toFixed(2)}`);

/** "+20,000 tokens", "+$5.00", or both. */
const grantAmount = (g: GrantJson): string =>
  [g.tokens > 0 ? `+${g.tokens.toLocaleString('en-US')} tokens` : '', g.usd > 0 ? `+$${g.usd.toFixed(2)}` : ''].filter(Boolean).join(' ');

const positiveNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number ≥ 0');
  return n;
};

const percentList = (value: string): number[] => value.split(',').map((v) => positiveInt(v.trim()));

/** `gpt-5*,o3*`: model ids or globs (the server checks each). */
const modelList = (value: string): string[] => value.split(',').map((v) => v.trim()).filter((v) => v !== '');

/**
 * `90:gpt-5-mini,100:qwen3:8b`: fallback rules, a percentage and a model each (a model id may hold
 * colons itself, so only the first one separates).
 */
const fallbackRules = (value: string): Array<{ at: number; to: string }> =>
  value.split(',').map((rule) => {
    const colon = rule.indexOf(':');
    if (colon < 0) throw new InvalidArgumentError(`"${rule.trim()}" is not a rule: write PERCENT:MODEL, e.g. 90:gpt-5-mini`);
    return { at: positiveInt(rule.slice(0, colon).trim()), to: rule.slice(colon + 1).trim() };
  });

/** For an option given once per value: `--external-id a --external-id b`. */
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A value from the server or the command line inside a human-readable line (see terminalText). */
const shown = (value: unknown): string => terminalText(String(value));

const when = (iso: unknown): string => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

/**
 * `lobe-quota …`: a thin client of the admin API. Returns the exit code instead of exiting, so a
 * test can run it in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const doFetch = io.fetch ?? fetch;
  const defaultUrl = io.env.LOBE_QUOTA_URL || `http://127.0.0.1:${io.env.PORT || 3400}`;

  const program = new Command('lobe-quota')
    .description('Budgets and quota status for LobeChat and any OpenAI client. Talks to a running lobe-quota server.')
    .addOption(new Option('--url <url>', 'server base URL (env LOBE_QUOTA_URL)').default(defaultUrl))
    .option('--token <token>', 'admin token (env ADMIN_TOKEN)')
    .option('--json', 'print the raw JSON answer', false)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();

  const globals = () => program.opts<GlobalOptions>();

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const { url } = globals();
    const token = globals().token ?? (io.env.ADMIN_TOKEN || undefined);
    if (!token) throw new RequestFailed('no admin token: pass --token or set ADMIN_TOKEN (printed on the first start)');
    let response: Response;
    try {
      response = await doFetch(`${url.replace(/\/+$/, '')}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (error) {
      throw new RequestFailed(`cannot reach ${url}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        /* not our JSON: show the text as it came */
      }
      throw new RequestFailed(`${response.status}: ${message}`);
    }
    return response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  }

  /** Prints JSON when --json is given, otherwise the human form. */
  const show = (data: unknown, human: () => string) => io.stdout(globals().json ? `${JSON.stringify(data, null, 2)}\n` : human());

  const projects = program.command('projects').description('manage projects (teams)');
  projects
    .command('add <id>')
    .option('--name <name>', 'display name')
    .action(async (id: string, o: { name?: string }) => {
      const p = (await call('POST', '/admin/projects', { id, name: o.name })) as { id: string; name: string };
      show(p, () => `project ${shown(p.id)} (${shown(p.name)}) added\n`);
    });
  projects.command('list').action(async () => {
    const data = (await call('GET', '/admin/projects')) as { projects: Array<Record<string, unknown>> };
    show(data, () => formatTable(['id', 'name', 'created'], data.projects.map((p) => [p.id, p.name, when(p.createdAt)])));
  });

  const users = program.command('users').description('manage users');
  users
    .command('add <id>')
    .option('--name <name>', 'display name')
    .option('--project <id>', 'the project the user belongs to')
    .option('--external-id <id>', 'another system’s id for this person (e.g. LobeChat’s user_2ab…); repeat for more', collect, [])
    .action(async (id: string, o: { name?: string; project?: string; externalId: string[] }) => {
      const body = { id, name: o.name, projectId: o.project, ...(o.externalId.length > 0 ? { externalIds: o.externalId } : {}) };
      const u = (await call('POST', '/admin/users', body)) as { id: string; projectId: string | null };
      show(u, () => `user ${shown(u.id)} added${u.projectId ? ` to project ${shown(u.projectId)}` : ''}\n`);
    });
  users.command('list').action(async () => {
    const data = (await call('GET', '/admin/users')) as { users: Array<Record<string, unknown> & { externalIds: string[] }> };
    show(data, () =>
      formatTable(
        ['id', 'name', 'project', 'external ids', 'created'],
        data.users.map((u) => [u.id, u.name, u.projectId, u.externalIds.join(', '), when(u.createdAt)]),
      ),
    );
  });
  users
    .command('link <user> <externalId>')
    .description('a service key naming externalId (X-Quota-User, or the body’s user, as LobeChat sends it) then charges this user')
    .action(async (userId: string, externalId: string) => {
      const r = (await call('POST', `/admin/users/${encodeURIComponent(userId)}/external-ids`, { externalId })) as {
        user: { id: string };
        note?: string;
      };
      show(r, () => `${shown(externalId)} linked to user ${shown(r.user.id)}\n${r.note === undefined ? '' : `${terminalText(r.note, MAX_LINE_CHARS)}\n`}`);
    });
  users
    .command('unlink <user> <externalId>')
    .description('requests naming externalId no longer charge this user')
    .action(async (userId: string, externalId: string) => {
      const r = (await call('DELETE', `/admin/users/${encodeURIComponent(userId)}/external-ids/${encodeURIComponent(externalId)}`)) as { user: { id: string } };
      show(r, () => `${shown(externalId)} unlinked from user ${shown(r.user.id)}\n`);
    });

  const keys = program.command('keys').description('issue and revoke lq- keys');
  keys
    .command('create')
    .requiredOption('--user <id>', 'the user the key belongs to')
    .option('--name <name>', 'a label, e.g. laptop', 'default')
    .option('--service', 'a service key may name the end user per request (X-Quota-User, or the body’s user)', false)
    .addOption(
      new Option('--refusal-style <style>', 'refusals on chat endpoints as an HTTP error or as an assistant answer (default: the config’s)').choices(['answer', 'error']),
    )
    .action(async (o: { user: string; name: string; service: boolean; refusalStyle?: string }) => {
      const body = { userId: o.user, name: o.name, service: o.service, ...(o.refusalStyle ? { refusalStyle: o.refusalStyle } : {}) };
      const k = (await call('POST', '/admin/keys', body)) as { id: string; key: string };
      show(k, () => `key ${shown(k.id)} for ${shown(o.user)}:\n\n  ${k.key}\n\nshown once: store it now (lobe-quota keeps only its hash)\n`);
    });
  keys
    .command('list')
    .option('--user <id>', 'only this user’s keys')
    .action(async (o: { user?: string }) => {
      const data = (await call('GET', `/admin/keys${o.user ? `?userId=${encodeURIComponent(o.user)}` : ''}`)) as {
        keys: Array<Record<string, unknown>>;
      };
      show(data, () =>
        formatTable(
          ['id', 'user', 'name', 'prefix', 'service', 'refusals', 'created', 'revoked'],
          data.keys.map((k) => [k.id, k.userId, k.name, `${String(k.prefix)}…`, k.service ? 'yes' : '', k.refusalStyle ?? 'default', when(k.createdAt), when(k.revokedAt)]),
        ),
      );
    });
  keys
    .command('set-refusal-style')
    .description('how refusals on chat endpoints reach this key: answer, error, or default (the config’s proxy.refusalStyle)')
    .argument('<id>', 'the key id (key_…)')
    .addArgument(new Argument('<style>').choices(['answer', 'error', 'default']))
    .action(async (id: string, style: string) => {
      const k = (await call('PATCH', `/admin/keys/${encodeURIComponent(id)}`, { refusalStyle: style === 'default' ? null : style })) as {
        id: string;
        refusalStyle: string | null;
      };
      show(k, () => `key ${shown(k.id)}: refusals ${k.refusalStyle === null ? 'as the config says (proxy.refusalStyle)' : `as ${k.refusalStyle === 'answer' ? 'an answer' : 'an error'}`}\n`);
    });
  keys.command('revoke <id>').action(async (id: string) => {
    const k = (await call('DELETE', `/admin/keys/${encodeURIComponent(id)}`)) as { id: string };
    show(k, () => `key ${shown(k.id)} revoked\n`);
  });

  const budgets = program.command('budgets').description('set, list and delete budgets');
  budgets
    .command('set <scope>')
    .description('create or replace the budget of a scope (global, project:ID, user:ID, key:ID, upstream:NAME) for one period (and set of models)')
    .option('--tokens <n>', 'token limit', positiveInt)
    .option('--usd <dollars>', 'dollar limit', positiveNumber)
    .addOption(new Option('--per <period>', 'window').choices(['day', 'week', 'month', 'rolling', 'total']).makeOptionMandatory())
    .option('--tz <zone>', 'IANA time zone of day/week/month windows', 'UTC')
    .option('--hours <n>', 'length of a rolling window', positiveInt)
    .option('--thresholds <list>', 'alert thresholds in percent, e.g. 50,80,100', percentList)
    .addOption(new Option('--on-limit <action>', 'what happens at 100 %').choices(['reject', 'downgrade', 'alert-only']))
    .option('--downgrade-to <model>', 'the cheaper model for --on-limit downgrade')
    .option('--models <list>', 'count and limit only these models (ids or globs), e.g. gpt-5*,o3*', modelList)
    .option('--fallback <rules>', 'at or past each percentage, serve requests with another model, e.g. 90:gpt-5-mini,100:qwen3:8b', fallbackRules)
    .action(
      async (
        scope: string,
        o: {
          tokens?: number;
          usd?: number;
          per: string;
          tz: string;
          hours?: number;
          thresholds?: number[];
          onLimit?: string;
          downgradeTo?: string;
          models?: string[];
          fallback?: Array<{ at: number; to: string }>;
        },
      ) => {
        const window =
          o.per === 'rolling' ? { kind: 'rolling', hours: o.hours } : o.per === 'total' ? { kind: 'total' } : { kind: o.per, timeZone: o.tz };
        const b = (await call('PUT', '/admin/budgets', {
          scope,
          window,
          limitTokens: o.tokens ?? null,
          limitUsd: o.usd ?? null,
          thresholds: o.thresholds,
          onLimit: o.onLimit,
          downgradeTo: o.downgradeTo,
          models: o.models,
          fallback: o.fallback,
        })) as PutBudgetJson;
        show(b, () => budgetSetText(b));
      },
    );
  budgets.command('list').action(async () => {
    const data = (await call('GET', '/admin/budgets')) as { budgets: Array<Record<string, unknown>>; defaults: Array<Record<string, unknown>> };
    show(data, () => {
      const rows = [
        ...data.budgets.map((b) => [b.id, Array.isArray(b.models) ? `${String(b.scope)} (${b.models.join(', ')})` : b.scope, describeWindow(b.window), limits(b), b.onLimit]),
        ...data.defaults.map((d) => ['(config)', `every ${String(d.scope)}`, describeWindow(d.window), limits(d), d.onLimit]),
      ];
      return formatTable(['id', 'scope', 'window', 'limit', 'at limit'], rows);
    });
  });
  budgets.command('delete <id>').action(async (id: string) => {
    const b = (await call('DELETE', `/admin/budgets/${encodeURIComponent(id)}`)) as { id: string };
    show(b, () => `budget ${shown(b.id)} deleted\n`);
  });

  const requests = program.command('requests').description('list increase requests and approve or deny them');
  requests
    .command('list')
    .option('--state <state>', 'open, approved or denied', 'open')
    .action(async (o: { state: string }) => {
      const data = (await call('GET', `/admin/requests?state=${encodeURIComponent(o.state)}`)) as { requests: RequestJson[] };
      show(data, () =>
        formatTable(
          ['id', 'user', 'budget', 'asked', 'reason', 'state', 'asked at'],
          data.requests.map((r) => [r.id, r.userId, r.scope, requestAmount(r.amountTokens, r.amountUsd), r.reason ?? '', r.state, when(r.createdAt)]),
        ),
      );
    });
  requests
    .command('approve <id>')
    .description('approve a request: a grant on its budget for the rest of the window')
    .option('--amount <n>', 'grant another amount than asked, in the budget’s unit (tokens, or dollars)', positiveNumber)
    .action(async (id: string, o: { amount?: number }) => {
      const r = (await call('POST', `/admin/requests/${encodeURIComponent(id)}/approve`, o.amount === undefined ? {} : { amount: o.amount })) as RequestJson;
      show(r, () => `request ${shown(r.id)} of ${shown(r.userId)} approved: ${requestAmount(r.grantedTokens ?? 0, r.grantedUsd ?? 0)} on ${shown(r.scope)}\n`);
    });
  requests.command('deny <id>').action(async (id: string) => {
    const r = (await call('POST', `/admin/requests/${encodeURIComponent(id)}/deny`, {})) as RequestJson;
    show(r, () => `request ${shown(r.id)} of ${shown(r.userId)} denied\n`);
  });

  const grants = program.command('grants').description('give a budget more room until its window ends (or a date), and list grants');
  grants
    .command('add <budgetId>')
    .description('grant extra tokens and/or dollars on a budget (an id from `budgets list`, or config:SCOPE|PERIOD)')
    .option('--tokens <n>', 'extra tokens', positiveInt)
    .option('--usd <dollars>', 'extra dollars', positiveNumber)
    .option('--until <iso>', 'end before the window does (ISO 8601, e.g. 2026-12-24T00:00:00Z)')
    .option('--reason <text>', 'why, kept with the grant')
    .action(async (budgetId: string, o: { tokens?: number; usd?: number; until?: string; reason?: string }) => {
      const g = (await call('POST', '/admin/grants', { budgetId, tokens: o.tokens, usd: o.usd, until: o.until, reason: o.reason })) as GrantJson;
      show(g, () => `granted ${grantAmount(g)} on ${shown(g.scope)} until ${when(g.endsAt)} (grant ${shown(g.id)})\n`);
    });
  grants
    .command('list')
    .option('--scope <scope>', 'one subject’s, e.g. user:alice')
    .option('--active', 'only those in force now')
    .action(async (o: { scope?: string; active?: boolean }) => {
      const query = new URLSearchParams({ ...(o.scope ? { scope: o.scope } : {}), ...(o.active ? { active: 'true' } : {}) }).toString();
      const data = (await call('GET', `/admin/grants${query ? `?${query}` : ''}`)) as { grants: GrantJson[] };
      show(data, () =>
        formatTable(
          ['id', 'scope', 'amount', 'until', 'by', 'reason'],
          data.grants.map((g) => [g.id, g.scope, grantAmount(g), when(g.endsAt), g.decidedBy, g.reason ?? '']),
        ),
      );
    });

  const rateLimits = program.command('rate-limits').description('set, list and delete a key’s, user’s or project’s own rate limits (over the config’s rateLimits)');
  rateLimits
    .command('set <scope>')
    .description('set the rate limits of key:ID, user:ID or project:ID; a limit not given keeps the config’s, "none" lifts it')
    .option('--per-minute <n>', 'requests a minute', limitOrNone)
    .option('--per-hour <n>', 'requests an hour', limitOrNone)
    .option('--per-day <n>', 'requests a (UTC) day', limitOrNone)
    .option('--tokens-per-minute <n>', 'tokens a minute (prompt plus the output asked for)', limitOrNone)
    .option('--max-concurrent <n>', 'requests in flight at once', limitOrNone)
    .action(async (scope: string, o: Record<'perMinute' | 'perHour' | 'perDay' | 'tokensPerMinute' | 'maxConcurrent', number | 'none' | undefined>) => {
      // Commander does not keep a parser's null (the option then holds its text): "none" becomes null here.
      const value = (v: number | 'none' | undefined) => (v === 'none' ? null : v);
      const r = (await call('PUT', '/admin/rate-limits', {
        scope,
        requestsPerMinute: value(o.perMinute),
        requestsPerHour: value(o.perHour),
        requestsPerDay: value(o.perDay),
        tokensPerMinute: value(o.tokensPerMinute),
        maxConcurrent: value(o.maxConcurrent),
      })) as RateLimitJson & { replaced: RateLimitJson | null };
      show(r, () => `${r.replaced === null ? 'set' : 'replaced'} ${r.scope}: ${describeRateLimit(r.effective)}\n`);
    });
  rateLimits.command('list').action(async () => {
    const data = (await call('GET', '/admin/rate-limits')) as { rateLimits: RateLimitJson[]; defaults: Record<string, Record<string, number> | undefined> };
    show(data, () =>
      formatTable(
        ['scope', 'limits in force'],
        [
          ...data.rateLimits.map((r) => [r.scope, describeRateLimit(r.effective)]),
          ...Object.entries(data.defaults).map(([kind, limit]) => [`(config) every ${kind}`, describeRateLimit(limit ?? {})]),
        ],
      ),
    );
  });
  rateLimits.command('delete <scope>').action(async (scope: string) => {
    const r = (await call('DELETE', `/admin/rate-limits/${encodeURIComponent(scope)}`)) as RateLimitJson;
    show(r, () => `rate limits of ${r.scope} deleted: the config’s apply again\n`);
  });

  program
    .command('usage')
    .description('usage per user, project, key, model or day, or per two of them (--by user,model)')
    .option('--by <groups>', 'group by user, project, key, model or day, or two of them comma-separated', 'user')
    .option('--from <when>', 'start: a date (YYYY-MM-DD, midnight in --tz) or an ISO 8601 instant with offset; default: start of this month')
    .option('--to <when>', 'end, exclusive: a date (YYYY-MM-DD: through the end of that day in --tz) or an ISO 8601 instant with offset; default: now')
    .option('--tz <zone>', 'time zone of days, of plain --from/--to dates and of the default range', 'UTC')
    .option('--csv', 'print CSV', false)
    .action(async (o: { by: string; from?: string; to?: string; tz: string; csv: boolean }) => {
      // The server validates --by (and names groupBy in its error), so the CLI accepts what it accepts.
      const query = new URLSearchParams({ groupBy: o.by, tz: o.tz, format: o.csv ? 'csv' : 'json' });
      for (const edge of ['from', 'to'] as const) {
        const typed = o[edge];
        if (!typed) continue;
        const bound = reportBound(typed, o.tz, edge);
        if (!bound.ok) throw new BadArgument(bound.problem);
        query.set(edge, bound.value);
      }
      const data = await call('GET', `/admin/usage?${query}`);
      if (o.csv) return io.stdout(String(data));
      const report = data as { groupBy: string; rows: Array<Record<string, unknown>>; totals: Record<string, unknown> };
      const dimensions = report.groupBy.split(',');
      show(report, () =>
        formatTable(
          [...dimensions, 'requests', 'input', 'output', 'cached', 'reasoning', 'total tokens', 'cost $'],
          [
            ...report.rows.map((r) => [...dimensions.map((d) => r[d]), ...usageColumns(r)]),
            ['total', ...dimensions.slice(1).map(() => ''), ...usageColumns(report.totals)],
          ],
        ),
      );
    });

  program
    .command('quota [subject]')
    .description('quota status of one subject (user:ID, project:ID, key:ID, global) or of all')
    .action(async (subject?: string) => {
      const data = await call('GET', subject ? `/quota/${encodeURIComponent(subject)}` : '/quota');
      const statuses = subject ? [data as QuotaJson] : (data as { subjects: QuotaJson[] }).subjects;
      show(data, () =>
        formatTable(
          ['subject', 'budget', 'window', 'used', 'limit', '%', 'status', 'resets'],
          statuses.flatMap((s) =>
            s.budgets.map((b) => [
              `${s.subject.kind}:${s.subject.id}`,
              b.scope,
              describeWindow(b.window),
              b.limitTokens !== null ? b.usedTokens : `$${b.usedUsd}`,
              b.limitTokens !== null ? b.limitTokens : `$${b.limitUsd}`,
              b.percentage,
              b.status,
              b.resetsAt ?? '',
            ]),
          ),
        ),
      );
    });

  program
    .command('alerts')
    .description('alerts fired, with their delivery state')
    .option('--scope <scope>', 'only this scope, e.g. user:alice')
    .option('--level <level>', 'a threshold percent, "projected", "anomaly" or "overrun"')
    .addOption(new Option('--state <state>', 'delivery state').choices(['pending', 'delivered']))
    .option('--limit <n>', 'at most this many', positiveInt)
    .action(async (o: { scope?: string; level?: string; state?: string; limit?: number }) => {
      const query = new URLSearchParams();
      if (o.scope) query.set('scope', o.scope);
      if (o.level) query.set('level', o.level);
      if (o.state) query.set('state', o.state);
      if (o.limit !== undefined) query.set('limit', String(o.limit));
      const data = (await call('GET', `/admin/alerts${query.size > 0 ? `?${query}` : ''}`)) as {
        alerts: Array<Record<string, unknown> & { deliveries: Array<{ channel: string; state: string }> }>;
      };
      show(data, () =>
        formatTable(
          ['fired', 'scope', 'level', '%', 'usage', 'limit', 'unit', 'deliveries'],
          data.alerts.map((a) => [
            when(a.firedAt),
            a.scope,
            a.kind === 'threshold' ? `${String(a.threshold)}%` : a.kind,
            a.percentage,
            a.usage,
            a.limit,
            a.unit,
            a.deliveries.map((d) => `${d.channel}:${d.state}`).join(' ') || '(none)',
          ]),
        ),
      );
    });

  const holds = program.command('holds').description('what in-flight requests have set aside (holds list, holds release <id>)');
  holds
    .command('list', { isDefault: true })
    .description('the holds of requests in flight')
    .action(async () => {
      const data = (await call('GET', '/admin/holds')) as { holds: Array<Record<string, unknown>> };
      show(data, () =>
        formatTable(['id', 'user', 'key', 'tokens', 'usd', 'expires'], data.holds.map((h) => [h.id, h.userId, h.keyId, h.tokens, h.usd, when(h.expiresAt)])),
      );
    });
  holds
    .command('release <id>')
    .description('release a hold that outlived its request: its room is free again, nothing is charged')
    .action(async (id: string) => {
      const h = (await call('DELETE', `/admin/holds/${encodeURIComponent(id)}`)) as { id: string; tokens: number; usd: number };
      show(h, () => `hold ${shown(h.id)} released: ${h.tokens} tokens and $${h.usd} are free again, nothing charged\n`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof RequestFailed || error instanceof BadArgument) {
      io.stderr(`error: ${terminalText(error.message, MAX_LINE_CHARS)}\n`);
      return 1;
    }
    throw error;
  }
}

interface QuotaJson {
  subject: { kind: string; id: string };
  budgets: Array<{
    scope: string;
    window: unknown;
    usedTokens: number;
    limitTokens: number | null;
    usedUsd: number;
    limitUsd: number | null;
    percentage: number;
    status: string;
    resetsAt: string | null;
  }>;
}

function describeWindow(window: unknown): string {
  const w = window as { kind: string; timeZone?: string; hours?: number };
  if (w.kind === 'rolling') return `rolling ${w.hours}h`;
  return w.timeZone && w.timeZone !== 'UTC' ? `${w.kind} (${w.timeZone})` : w.kind;
}

function limits(b: Record<string, unknown>): string {
  const parts: string[] = [];
  if (b.limitTokens !== null && b.limitTokens !== undefined) parts.push(`${String(b.limitTokens)} tokens`);
  if (b.limitUsd !== null && b.limitUsd !== undefined) parts.push(`$${String(b.limitUsd)}`);
  return parts.join(' + ');
}

const usageColumns = (r: Record<string, unknown>) => [
  r.requests,
  r.inputTokens,
  r.outputTokens,
  r.cachedTokens,
  r.reasoningTokens,
  r.totalTokens,
  typeof r.costUsd === 'number' ? r.costUsd.toFixed(6) : r.costUsd,
];
