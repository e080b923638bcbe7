import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, listen, testService } from '../testing/harness.js';
import { runCli } from './cli.js';

const servers: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A real server on a free port, and a CLI pointed at it through the environment, as a user would. */
async function cliAgainstServer() {
  const svc = testService();
  const server = await listen(svc.app.fetch);
  servers.push(server);
  const run = async (line: string, env: Record<string, string> = { LOBE_QUOTA_URL: server.url, ADMIN_TOKEN }) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(line.split(' ').filter(Boolean), { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    return { code, stdout, stderr };
  };
  return { svc, run, url: server.url };
}

describe('lobe-quota CLI', () => {
  it('adds a project, a user, a key and a budget, then shows quota and usage', async () => {
    const { run, svc } = await cliAgainstServer();
    expect(await run('projects add research --name Research')).toMatchObject({ code: 0, stdout: 'project research (Research) added\n' });
    expect(await run('users add alice --project research')).toMatchObject({ code: 0, stdout: 'user alice added to project research\n' });

    const created = await run('keys create --user alice --name laptop');
    expect(created.code).toBe(0);
    const key = /\n {2}(lq-\S+)\n/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    expect(created.stdout).toContain('shown once');

    const budget = await run('budgets set user:alice --tokens 100000 --per month --tz Asia/Shanghai');
    expect(budget.code).toBe(0);
    expect(budget.stdout).toMatch(/^created user:alice month: 100,000 tokens\/month \(Asia\/Shanghai\) \(budget bud_\w+\)\n$/);
    expect((await svc.store.listBudgets())[0]).toMatchObject({ limitTokens: 100000, window: { kind: 'month', timeZone: 'Asia/Shanghai' } });

    const quota = await run('quota user:alice');
    expect(quota.stdout).toMatch(/user:alice\s+user:alice\s+month \(Asia\/Shanghai\)\s+0\s+100000\s+0\s+normal\s+2026-12-01T00:00:00\+08:00/);

    const keys = await run('keys list --user alice');
    expect(keys.stdout).toContain('laptop');
    expect(keys.stdout).not.toContain(key);

    await svc.store.settle({
      holdId: 'r1',
      subject: { userId: 'alice', projectId: 'research', keyId: 'k' },
      usage: { model: 'gpt-4o', inputTokens: 120, outputTokens: 30, cachedTokens: 0, reasoningTokens: 0, costMicros: 750_000, source: 'upstream', outcome: 'ok', latencyMs: 3, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });
    const usage = await run('usage --by user');
    expect(usage.stdout.split('\n').slice(0, 3)).toEqual([
      'user   requests  input  output  cached  reasoning  total tokens  cost $',
      'alice         1    120      30       0          0           150  0.750000',
      'total         1    120      30       0          0           150  0.750000',
    ]);
    const crossed = await run('usage --by user,model');
    expect(crossed.stdout.split('\n').slice(0, 3)).toEqual([
      'user   model   requests  input  output  cached  reasoning  total tokens  cost $',
      'alice  gpt-4o         1    120      30       0          0           150  0.750000',
      'total                 1    120      30       0          0           150  0.750000',
    ]);
    const refused = await run('usage --by user,user');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('groupBy: "user" given twice');
    const csv = await run('usage --by model --csv');
    expect(csv.stdout).toBe('model,requests,input_tokens,output_tokens,cached_tokens,cache_write_tokens,reasoning_tokens,total_tokens,cost_usd,cache_hits,saved_tokens,saved_usd\r\ngpt-4o,1,120,30,0,0,0,150,0.750000,0,0,0.000000\r\n');

    const json = await run('--json budgets list');
    expect(JSON.parse(json.stdout)).toMatchObject({ budgets: [{ scope: 'user:alice', limitTokens: 100000 }] });
  });

  it('lists alerts with their delivery state', async () => {
    const { run, svc } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    expect((await run('budgets set user:alice --tokens 1000 --per total')).code).toBe(0);
    await svc.store.settle({
      holdId: 'r1',
      subject: { userId: 'alice', projectId: null, keyId: 'k' },
      usage: { model: 'gpt-4o', inputTokens: 850, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 3, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });
    const listed = await run('alerts --scope user:alice');
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^fired\s+scope\s+level\s+%\s+usage\s+limit\s+unit\s+deliveries$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(1, 3)).sort()).toEqual([
      ['user:alice', '50%'],
      ['user:alice', '80%'],
    ]);
    expect(listed.stdout).toContain('(none)');
    expect((await run('alerts --level 95')).stdout).toContain('(none)');
  });

  it('shows names with control characters escaped and long values cut, and --json keeps them whole', async () => {
    const { run, svc } = await cliAgainstServer();
    const red = '\u001b[31mRED\u001b[0m';
    expect((await run(`users add alice --name ${red}Alice\u009b2J`)).code).toBe(0);
    const model = `${red}${'m'.repeat(100_000)}`;
    await svc.store.settle({
      holdId: 'r1',
      subject: { userId: 'alice', projectId: null, keyId: 'k' },
      usage: { model, inputTokens: 10, outputTokens: 5, cachedTokens: 0, reasoningTokens: 0, costMicros: 1, source: 'upstream', outcome: 'ok', latencyMs: 3, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });

    for (const line of ['usage --by model', 'usage --by user,model', 'users list']) {
      const { code, stdout } = await run(line);
      expect(code, line).toBe(0);
      expect(stdout, line).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect(Math.max(...stdout.split('\n').map((l) => l.length)), line).toBeLessThan(200);
    }
    const byModel = (await run('usage --by model')).stdout.split('\n')[1] ?? '';
    expect(byModel).toMatch(/^\\x1b\[31mRED\\x1b\[0mm+… +1 +10 +5 /);
    expect((await run('users list')).stdout).toContain('\\x1b[31mRED\\x1b[0mAlice\\x9b2J');

    const json = JSON.parse((await run('--json usage --by model')).stdout) as { rows: Array<{ model: string }> };
    expect(json.rows[0]?.model).toBe(model);
  });

  it('lists holds and releases one without charging anything', async () => {
    const { run, svc } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    await svc.store.reserve({ holdId: 'req-stuck', subject: { userId: 'alice', projectId: null, keyId: 'k' }, quote: { tokens: 4_000, micros: 25_000 }, now: svc.clock.now(), ttlMs: 60_000 });
    expect((await run('holds')).stdout).toMatch(/^req-stuck\s+alice\s+k\s+4000\s+0\.025\s/m);
    expect((await run('holds list')).stdout).toContain('req-stuck');

    expect(await run('holds release req-stuck')).toMatchObject({ code: 0, stdout: 'hold req-stuck released: 4000 tokens and $0.025 are free again, nothing charged\n' });
    expect(await svc.store.listHolds()).toEqual([]);
    expect(await svc.store.usageReport({ groupBy: 'user', from: 0, to: Number.MAX_SAFE_INTEGER, timeZone: 'UTC' })).toEqual([]);
    expect((await run('holds')).stdout).toContain('(none)');

    expect(await run('holds release req-stuck')).toMatchObject({ code: 1, stdout: '', stderr: 'error: 404: no hold "req-stuck"\n' });
  });

  it('usage --from/--to take plain dates: midnight in --tz, and --to through the end of that day', async () => {
    const { run, svc } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    const spend = (id: string, at: string, tokens: number) =>
      svc.store.settle({
        holdId: id,
        subject: { userId: 'alice', projectId: null, keyId: 'k' },
        usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
        now: Date.parse(at),
      });
    await spend('a', '2026-11-30T15:59:59Z', 1);
    await spend('b', '2026-11-30T16:00:00Z', 10); // midnight of Dec 1 in Shanghai
    await spend('c', '2026-12-01T12:00:00Z', 100);
    await spend('d', '2026-12-01T23:59:59Z', 1_000);
    await spend('e', '2026-12-02T00:00:00Z', 10_000);
    const report = async (args: string) => {
      const { code, stdout, stderr } = await run(`--json usage --by user ${args}`);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(stdout) as { from: string; to: string; totals: { totalTokens: number } };
    };

    expect(await report('--from 2026-12-01 --to 2026-12-01')).toMatchObject({ from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z', totals: { totalTokens: 1_100 } });
    expect(await report('--from 2026-12-01 --to 2026-12-01 --tz Asia/Shanghai')).toMatchObject({ from: '2026-11-30T16:00:00.000Z', totals: { totalTokens: 110 } });
    expect((await report('--from 2026-11-30 --to 2026-12-01T12:00:00Z')).totals.totalTokens).toBe(11);
    expect((await report('--from 2026-12-01T12:00:00+00:00 --to 2026-12-02')).totals.totalTokens).toBe(11_100);

    const human = await run('usage --by user --from 2026-12-01 --to 2026-12-02');
    expect(human.code).toBe(0);
    expect(human.stdout.split('\n')[1]).toMatch(/^alice\s+3\s+11100\s/);

    expect(await run('usage --from 2026-02-30')).toMatchObject({ code: 1, stderr: 'error: --from: 2026-02-30 is not a date\n' });
    expect(await run('usage --to 2026-12-01 --tz Mars/Base')).toMatchObject({ code: 1, stderr: 'error: --tz: unknown IANA time zone "Mars/Base"\n' });
    expect((await run('usage --help')).stdout).toContain('a date (YYYY-MM-DD, midnight in --tz)');
  });

  it('rate-limits set, list and delete a subject’s limits over the config’s', async () => {
    const { run } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    expect(await run('rate-limits set user:alice --per-day 500 --max-concurrent 2')).toMatchObject({ code: 0, stdout: 'set user:alice: 500 requests/day, 2 in flight\n' });
    expect(await run('rate-limits set user:alice --per-minute 10 --max-concurrent none')).toMatchObject({ code: 0, stdout: 'replaced user:alice: 10 requests/minute\n' });
    expect((await run('rate-limits set user:alice --per-minute 0')).stderr).toContain('must be a whole number from 1, or none');
    expect((await run('rate-limits set global --per-minute 5')).stderr).toContain('scope: unknown scope "global"');
    expect((await run('rate-limits list')).stdout).toMatch(/user:alice +10 requests\/minute/);
    expect(await run('rate-limits delete user:alice')).toMatchObject({ code: 0, stdout: 'rate limits of user:alice deleted: the config’s apply again\n' });
    expect((await run('rate-limits delete user:alice')).code).toBe(1);
  });

  it('budgets set takes the models a budget limits, its fallback rules, and an upstream scope', async () => {
    const { run } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    const family = await run('budgets set user:alice --usd 20 --per month --models gpt-5*,o3* --fallback 90:gpt-5-mini,100:qwen3:8b');
    expect(family).toMatchObject({ code: 0, stderr: '' });
    expect(family.stdout).toMatch(
      /^created user:alice month models=gpt-5\*,o3\*: \$20\.00 of gpt-5\*, o3\*\/month \(UTC\), at 90 % to gpt-5-mini, at 100 % to qwen3:8b \(budget bud_\w+\)\n$/,
    );
    // Another set of models is another budget; the plain one stays apart.
    expect((await run('budgets set user:alice --tokens 1000 --per month')).stdout).toMatch(/^created user:alice month: /);
    expect((await run('budgets set upstream:openai --tokens 1200 --per rolling --hours 1')).stdout).toMatch(/^created upstream:openai rolling:1h: 1,200 tokens per rolling 1 h/);
    const list = (await run('budgets list')).stdout;
    expect(list).toContain('user:alice (gpt-5*, o3*)');
    expect(list).toContain('upstream:openai');
    const bad = await run('budgets set user:alice --tokens 5 --per day --fallback gpt-5-mini');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('PERCENT:MODEL');
    expect((await run('budgets set upstream:nowhere --tokens 5 --per day')).stderr).toContain('no upstream "nowhere"');
  });

  it('requests list shows open increase requests, and approve and deny decide them', async () => {
    const { run, svc } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    expect((await run('users add bob')).code).toBe(0);
    await run('budgets set user:alice --tokens 1000 --per day');
    await run('budgets set user:bob --tokens 1000 --per day');
    const ask = async (user: string, body: object) => {
      const key = ((await (await svc.admin('POST', '/admin/keys', { userId: user })).json()) as { key: string }).key;
      const response = await svc.as(key, '/quota/requests', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      expect(response.status, await response.clone().text()).toBe(201);
      return ((await response.json()) as { id: string }).id;
    };
    const alice = await ask('alice', { amount: 500, reason: 'deadline' });
    const bob = await ask('bob', { amount: 200 });
    const list = (await run('requests list')).stdout;
    expect(list).toMatch(new RegExp(`${alice} +alice +user:alice +\\+500 tokens +deadline +open`));
    expect(list).toContain(bob);
    expect((await run(`requests approve ${alice} --amount 300`)).stdout).toBe(`request ${alice} of alice approved: +300 tokens on user:alice\n`);
    expect((await run(`requests deny ${bob}`)).stdout).toBe(`request ${bob} of bob denied\n`);
    expect((await run('requests list')).stdout).not.toContain(alice);
    expect((await run('requests list --state approved')).stdout).toContain(alice);
    expect((await run(`requests approve ${alice}`)).code).not.toBe(0);
  });

  it('grants add gives a budget more room until its window ends, and grants list shows it', async () => {
    const { run } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    const id = /\(budget (bud_\w+)\)/.exec((await run('budgets set user:alice --tokens 1000 --per day')).stdout)?.[1];
    const added = await run(`grants add ${id} --tokens 20000 --reason deadline`);
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toMatch(/^granted \+20,000 tokens on user:alice until 2026-11-23 00:00:00Z \(grant grant_\w+\)\n$/);
    const list = (await run('grants list --scope user:alice --active')).stdout;
    expect(list).toMatch(/grant_\w+ +user:alice +\+20,000 tokens +2026-11-23 00:00:00Z +admin +deadline/);
    expect((await run('grants add bud_nope --tokens 5')).stderr).toContain('no budget "bud_nope"');
  });

  it('budgets set says "created" for a new budget and "replaced", with what was there, for an existing one', async () => {
    const { run } = await cliAgainstServer();
    expect((await run('users add alice')).code).toBe(0);
    const created = await run('budgets set user:alice --tokens 100000 --per month');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const id = /\(budget (bud_\w+)\)/.exec(created.stdout)?.[1];
    expect(created.stdout).toBe(`created user:alice month: 100,000 tokens/month (UTC) (budget ${id})\n`);
    expect((await run('budgets set user:alice --usd 20 --per month --tz Asia/Shanghai')).stdout).toBe(
      `replaced user:alice month: was 100,000 tokens/month (UTC), now $20.00/month (Asia/Shanghai) (budget ${id})\n`,
    );
    expect((await run('budgets set user:alice --usd 20 --tokens 5000 --per month --tz Asia/Shanghai --on-limit downgrade --downgrade-to gpt-4o-mini')).stdout).toBe(
      `replaced user:alice month: was $20.00/month (Asia/Shanghai), now 5,000 tokens + $20.00/month (Asia/Shanghai), then gpt-4o-mini (budget ${id})\n`,
    );
    expect((await run('budgets set user:alice --tokens 20000 --per rolling --hours 5')).stdout).toMatch(/^created user:alice rolling:5h: 20,000 tokens per rolling 5 h \(budget bud_\w+\)\n$/);
    expect((await run('budgets set user:alice --usd 0.005 --per total --on-limit alert-only')).stdout).toMatch(/^created user:alice total: \$0\.005 in total, alert only \(budget bud_\w+\)\n$/);
    const json = JSON.parse((await run('--json budgets set user:alice --usd 30 --per month')).stdout) as { limitUsd: number; replaced: { limitUsd: number; window: unknown } };
    expect(json).toMatchObject({ limitUsd: 30, replaced: { limitUsd: 20, window: { kind: 'month', timeZone: 'Asia/Shanghai' } } });
  });

  it('prints the server’s message and exits 1 when the server refuses', async () => {
    const { run } = await cliAgainstServer();
    const result = await run('budgets set user:ghost --tokens 5 --per day');
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toBe('error: 404: scope: no user ghost (create it first)\n');
    const tz = await run('users add alice');
    expect(tz.code).toBe(0);
    expect((await run('budgets set user:alice --tokens 5 --per day --tz Mars/Base')).stderr).toContain('window.timeZone: unknown IANA time zone "Mars/Base"');
  });

  it('explains a missing token, a wrong token and an unreachable server', async () => {
    const { run, url } = await cliAgainstServer();
    expect((await run('users list', { LOBE_QUOTA_URL: url })).stderr).toContain('no admin token');
    expect((await run('users list', { LOBE_QUOTA_URL: url, ADMIN_TOKEN: 'wrong-token-0000000000' })).stderr).toBe('error: 401: unknown or revoked token\n');
    const down = await run('users list', { LOBE_QUOTA_URL: 'http://127.0.0.1:9', ADMIN_TOKEN });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach http://127.0.0.1:9');
  });

  it('rejects bad arguments before calling the server', async () => {
    const { run } = await cliAgainstServer();
    const result = await run('budgets set user:alice --tokens many --per month');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("option '--tokens <n>' argument 'many' is invalid. must be a whole number");
    expect((await run('budgets set user:alice --tokens 5 --per fortnight')).stderr).toContain('Allowed choices are day, week, month, rolling, total');
  });
});

describe('lobe-quota CLI: a LobeChat server’s users and keys', () => {
  const LOBECHAT_ID = 'user_2abcDEFghiJKLmnoPQRstuVWXyz';

  it('adds a user with external ids, links and unlinks more, and users list shows them', async () => {
    const { run, svc } = await cliAgainstServer();
    expect(await run('users add alice --name Alice --external-id user_2a --external-id user_2b')).toMatchObject({ code: 0, stdout: 'user alice added\n' });
    expect((await svc.store.getUser('alice'))?.externalIds).toEqual(['user_2a', 'user_2b']);
    expect(await run(`users link alice ${LOBECHAT_ID}`)).toMatchObject({ code: 0, stdout: `${LOBECHAT_ID} linked to user alice\n`, stderr: '' });
    const listed = (await run('users list')).stdout.split('\n');
    expect(listed[0]).toMatch(/^id\s+name\s+project\s+external ids\s+created$/);
    expect(listed[1]).toMatch(new RegExp(`^alice\\s+Alice\\s+user_2a, ${LOBECHAT_ID}, user_2b\\s+2026-11-22 12:00:00Z$`));

    expect(await run(`users unlink alice ${LOBECHAT_ID}`)).toMatchObject({ code: 0, stdout: `${LOBECHAT_ID} unlinked from user alice\n` });
    expect((await svc.store.getUser('alice'))?.externalIds).toEqual(['user_2a', 'user_2b']);
    expect(await run(`users unlink alice ${LOBECHAT_ID}`)).toMatchObject({ code: 1, stderr: `error: 404: externalId: "${LOBECHAT_ID}" is not linked to any user\n` });
  });

  it('link says when a user created on first sight had the id, and refuses an id linked to someone else', async () => {
    const { run, svc } = await cliAgainstServer();
    await svc.store.createUser({ id: LOBECHAT_ID, name: LOBECHAT_ID, projectId: null }, svc.clock.now());
    expect((await run('users add alice')).code).toBe(0);
    expect((await run('users add bob --external-id user_2bob')).code).toBe(0);
    const linked = await run(`users link alice ${LOBECHAT_ID}`);
    expect(linked.code).toBe(0);
    expect(linked.stdout).toBe(
      `${LOBECHAT_ID} linked to user alice\nRequests naming "${LOBECHAT_ID}" charged the user "${LOBECHAT_ID}" until now and charge "alice" from now on. "${LOBECHAT_ID}" keeps its usage history and budgets; nothing is moved.\n`,
    );
    expect(await run('users link alice user_2bob')).toMatchObject({
      code: 1,
      stderr: 'error: 409: externalId: "user_2bob" is linked to user "bob"; unlink it there first (DELETE /admin/users/bob/external-ids/user_2bob)\n',
    });
    expect(await run('users link ghost user_2g')).toMatchObject({ code: 1, stderr: 'error: 404: no user "ghost"\n' });
  });

  it('creates a key with a refusal style, changes it, and keys list shows it', async () => {
    const { run, svc } = await cliAgainstServer();
    expect((await run('users add lobechat')).code).toBe(0);
    const created = await run('--json keys create --user lobechat --service --refusal-style answer');
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; service: boolean; refusalStyle: string };
    expect(key).toMatchObject({ service: true, refusalStyle: 'answer' });
    expect((await run('keys create --user lobechat --name plain')).code).toBe(0);

    const rows = (await run('keys list')).stdout.split('\n');
    expect(rows[0]).toMatch(/^id\s+user\s+name\s+prefix\s+service\s+refusals\s+created\s+revoked$/);
    expect(rows.find((r) => r.startsWith(key.id))).toMatch(/\s+yes\s+answer\s+/);
    expect(rows.find((r) => / plain /.test(r))).toMatch(/\s+default\s+/);

    expect(await run(`keys set-refusal-style ${key.id} error`)).toMatchObject({ code: 0, stdout: `key ${key.id}: refusals as an error\n` });
    expect((await svc.store.getKey(key.id))?.refusalStyle).toBe('error');
    expect(await run(`keys set-refusal-style ${key.id} default`)).toMatchObject({ code: 0, stdout: `key ${key.id}: refusals as the config says (proxy.refusalStyle)\n` });
    expect((await svc.store.getKey(key.id))?.refusalStyle).toBeNull();

    expect((await run(`keys set-refusal-style ${key.id} shout`)).stderr).toContain('Allowed choices are answer, error, default');
    expect((await run('keys create --user lobechat --refusal-style shout')).stderr).toContain('Allowed choices are answer, error');
    expect(await run('keys set-refusal-style key_nope answer')).toMatchObject({ code: 1, stderr: 'error: 404: no key "key_nope"\n' });
  });
});
