import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_FILE, loadConfig, publicUrlOf, type Config, type ConfigResult } from './load.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-config-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const writeFile = (name: string, content: unknown): string => {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
};

const expectOk = (result: ConfigResult): Config => {
  if (!result.ok) throw new Error(`expected a config, got problems:\n${result.problems.join('\n')}`);
  return result.config;
};

const expectProblems = (result: ConfigResult): string[] => {
  if (result.ok) throw new Error('expected problems, got a config');
  return result.problems;
};

describe('loadConfig: defaults', () => {
  it('no file and an empty environment → defaults', () => {
    const config = expectOk(loadConfig({ env: {}, cwd: dir }));
    expect(config).toEqual({
      port: 3400,
      host: '127.0.0.1',
      publicUrl: null,
      dataDir: path.join(dir, 'data'),
      database: { url: null, schema: 'public', poolSize: 10, statementTimeoutMs: 5_000, connectTimeoutMs: 2_000, heartbeatSeconds: 5, failOpen: false, sqliteSynchronous: 'normal' },
      adminToken: undefined,
      metricsToken: undefined,
      upstreams: [{ name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: undefined, models: ['*'] }],
      proxy: {
        connectTimeoutMs: 10_000,
        firstByteTimeoutMs: 300_000,
        idleTimeoutMs: 120_000,
        leaseTokens: 256,
        maxBodyBytes: 32 * 1024 * 1024,
        unpricedModels: 'refuse',
        downgradeCeilingPercent: 120,
        streamWholeAnswers: false,
        refusalStyle: 'error',
        corsOrigins: ['*'],
        estimates: {},
      },
      prices: {},
      rateLimits: {},
      statusLevels: { warning: 80, critical: 95, exceeded: 100 },
      holdTtlMs: 900_000,
      alertThresholds: [50, 80, 90, 95, 100],
      alerts: { channels: [], locale: 'en', projection: true, spike: { enabled: true, factor: 5, baselineHours: 24, minTokens: 10_000 } },
      retention: { ledgerDays: null },
      defaultBudgets: [],
      users: { autoCreate: true, autoCreateProjectId: null },
      cache: { enabled: false, scope: 'user', ttlSeconds: 86_400, maxMegabytes: 512, chargeFraction: 0 },
      requests: { linkTtlHours: 72, autoApprove: null },
      configPath: null,
    });
  });

  it('an empty file object → the same defaults, with the file recorded', () => {
    const file = writeFile(DEFAULT_CONFIG_FILE, {});
    const config = expectOk(loadConfig({ env: {}, cwd: dir }));
    expect(config.port).toBe(3400);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe(path.join(dir, 'data'));
    expect(config.configPath).toBe(file);
  });

  it.each<[string, Record<string, string>]>([
    ['PORT', { PORT: '' }],
    ['HOST', { HOST: '' }],
    ['DATA_DIR', { DATA_DIR: '' }],
    ['PUBLIC_URL', { PUBLIC_URL: '' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: '' }],
    ['OPENAI_BASE_URL and OPENAI_API_KEY', { OPENAI_BASE_URL: '', OPENAI_API_KEY: '' }],
    ['LOBE_QUOTA_CONFIG', { LOBE_QUOTA_CONFIG: '' }],
    ['DATABASE_URL', { DATABASE_URL: '' }],
    ['all at once', { PORT: '', HOST: '', DATA_DIR: '', DATABASE_URL: '', PUBLIC_URL: '', ADMIN_TOKEN: '', LOBE_QUOTA_CONFIG: '' }],
  ])('empty %s means unset', (_label, env) => {
    const config = expectOk(loadConfig({ env, cwd: dir }));
    expect(config.port).toBe(3400);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe(path.join(dir, 'data'));
    expect(config.publicUrl).toBeNull();
    expect(config.adminToken).toBeUndefined();
    expect(config.upstreams).toEqual([{ name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: undefined, models: ['*'] }]);
    expect(config.configPath).toBeNull();
  });

  it('empty environment values fall back to the file, not to the defaults', () => {
    writeFile(DEFAULT_CONFIG_FILE, { port: 5000, host: '0.0.0.0', dataDir: 'state' });
    const config = expectOk(loadConfig({ env: { PORT: '', HOST: '', DATA_DIR: '' }, cwd: dir }));
    expect(config.port).toBe(5000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.dataDir).toBe(path.join(dir, 'state'));
  });
});

describe('loadConfig: file and environment', () => {
  const FILE = {
    port: 5000,
    host: '0.0.0.0',
    publicUrl: 'https://file.example.com/',
    dataDir: './state',
    statusLevels: { warning: 70, critical: 90, exceeded: 100 },
    holds: { ttlSeconds: 60 },
    alerts: { thresholds: [75, 100] },
    defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 1_000_000 }],
  };

  it('the file alone sets every value (relative dataDir resolved against cwd)', () => {
    writeFile(DEFAULT_CONFIG_FILE, FILE);
    const config = expectOk(loadConfig({ env: {}, cwd: dir }));
    expect(config).toMatchObject({
      port: 5000,
      host: '0.0.0.0',
      publicUrl: 'https://file.example.com',
      dataDir: path.join(dir, 'state'),
      statusLevels: { warning: 70, critical: 90, exceeded: 100 },
      holdTtlMs: 60_000,
      alertThresholds: [75, 100],
      configPath: path.join(dir, DEFAULT_CONFIG_FILE),
    });
    expect(config.defaultBudgets).toEqual([
      {
        scope: 'user',
        window: { kind: 'month', timeZone: 'Asia/Shanghai' },
        limitTokens: 1_000_000,
        limitUsd: null,
        onLimit: 'reject',
      },
    ]);
  });

  it.each<[string, Record<string, string>, (cwd: string) => Partial<Config>]>([
    ['PORT', { PORT: '6000' }, () => ({ port: 6000, host: '0.0.0.0' })],
    ['PORT 0', { PORT: '0' }, () => ({ port: 0 })],
    ['HOST', { HOST: '::1' }, () => ({ host: '::1', port: 5000 })],
    ['DATA_DIR relative to cwd', { DATA_DIR: 'elsewhere/db' }, (cwd) => ({ dataDir: path.join(cwd, 'elsewhere', 'db') })],
    ['PUBLIC_URL (trailing slashes dropped)', { PUBLIC_URL: 'https://env.example.com//' }, () => ({ publicUrl: 'https://env.example.com' })],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'a-very-long-admin-token' }, () => ({ adminToken: 'a-very-long-admin-token' })],
    ['METRICS_TOKEN', { METRICS_TOKEN: 'a-long-metrics-token' }, () => ({ metricsToken: 'a-long-metrics-token' })],
    [
      'OPENAI_*',
      { OPENAI_BASE_URL: 'http://localhost:11434/v1', OPENAI_API_KEY: 'sk-test' },
      () => ({ upstreams: [{ name: 'openai', baseUrl: 'http://localhost:11434/v1', apiKey: 'sk-test', models: ['*'] }] }),
    ],
  ])('env %s wins over the file', (_label, env, expected) => {
    writeFile(DEFAULT_CONFIG_FILE, FILE);
    const config = expectOk(loadConfig({ env, cwd: dir }));
    expect(config).toMatchObject(expected(dir));
  });

  it('DATABASE_URL chooses PostgreSQL over the file\'s database.url; anything but postgres:// is refused', () => {
    writeFile('lobe-quota.config.json', { database: { url: 'postgres://file@db/one', schema: 'lq', heartbeatSeconds: 2 } });
    expect(expectOk(loadConfig({ env: {}, cwd: dir })).database).toMatchObject({ url: 'postgres://file@db/one', schema: 'lq', heartbeatSeconds: 2 });
    expect(expectOk(loadConfig({ env: { DATABASE_URL: 'postgresql://env@db/two' }, cwd: dir })).database.url).toBe('postgresql://env@db/two');
    const bad = loadConfig({ env: { DATABASE_URL: 'mysql://x@db/three' }, cwd: dir });
    expect(bad.ok === false && bad.problems).toEqual(['environment: DATABASE_URL: must be a postgres:// URL']);
  });

  it('an absolute DATA_DIR is kept as is', () => {
    const abs = path.join(dir, 'abs-data');
    const config = expectOk(loadConfig({ env: { DATA_DIR: abs }, cwd: path.join(dir, 'nowhere') }));
    expect(config.dataDir).toBe(abs);
  });

  it('LOBE_QUOTA_CONFIG picks another file (relative to cwd); the default file is ignored', () => {
    writeFile(DEFAULT_CONFIG_FILE, { port: 1111 });
    const other = writeFile('conf/other.json', { port: 2222 });
    const config = expectOk(loadConfig({ env: { LOBE_QUOTA_CONFIG: 'conf/other.json' }, cwd: dir }));
    expect(config.port).toBe(2222);
    expect(config.configPath).toBe(other);
  });
});

describe('loadConfig: problems', () => {
  it('bad JSON → exactly one problem naming the file', () => {
    const file = writeFile(DEFAULT_CONFIG_FILE, '{ "port": 3400, }');
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(file);
    expect(problems[0]).toContain('not valid JSON');
  });

  it('bad JSON and a bad environment → both listed', () => {
    writeFile(DEFAULT_CONFIG_FILE, 'port = 3400');
    const problems = expectProblems(loadConfig({ env: { PORT: 'abc' }, cwd: dir }));
    expect(problems).toHaveLength(2);
    expect(problems.some((p) => p.includes('not valid JSON'))).toBe(true);
    expect(problems.some((p) => p.startsWith('environment: PORT:'))).toBe(true);
  });

  it('a file with several problems → every one listed, each naming its path', () => {
    const file = writeFile(DEFAULT_CONFIG_FILE, {
      port: 3400,
      colour: 'red',
      defaultBudgets: [
        { scope: 'user', window: { kind: 'day', timeZone: 'Mars/Olympus_Mons' }, limitTokens: 100 },
        { scope: 'project', window: { kind: 'month' }, limitTokens: -5 },
        { scope: 'user', window: { kind: 'week' }, limitTokens: 100 },
        { scope: 'user', window: { kind: 'week', timeZone: 'Europe/Berlin' }, limitTokens: 200 },
      ],
    });
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    const expected: Array<[string, RegExp]> = [
      ['(root)', /colour/],
      ['defaultBudgets.0.window.timeZone', /Mars\/Olympus_Mons/],
      ['defaultBudgets.1.limitTokens', />=\s*0|too small/i],
      ['defaultBudgets.3', /second user budget for the same period \(week\)/],
    ];
    expect(problems).toHaveLength(expected.length);
    for (const [at, message] of expected) {
      const problem = problems.find((p) => p.startsWith(`${file}: ${at}: `));
      expect(problem, `a problem at ${at} in ${JSON.stringify(problems)}`).toBeDefined();
      expect(problem).toMatch(message);
    }
  });

  it.each<[string, unknown, string]>([
    ['nested unknown key', { holds: { ttl: 60 } }, 'holds'],
    ['port out of range', { port: 70000 }, 'port'],
    ['port not a number', { port: '3400' }, 'port'],
    ['bad status levels order', { statusLevels: { warning: 90, critical: 80 } }, 'statusLevels'],
    ['thresholds not increasing', { alerts: { thresholds: [80, 50] } }, 'alerts.thresholds'],
    ['budget without a limit', { defaultBudgets: [{ scope: 'user', window: { kind: 'total' } }] }, 'defaultBudgets.0.limitTokens'],
    [
      'downgrade without a target',
      { defaultBudgets: [{ scope: 'user', window: { kind: 'total' }, limitTokens: 1, onLimit: 'downgrade' }] },
      'defaultBudgets.0.downgradeTo',
    ],
    ['unknown scope kind', { defaultBudgets: [{ scope: 'team', window: { kind: 'total' }, limitTokens: 1 }] }, 'defaultBudgets.0.scope'],
    ['rolling hours 0', { defaultBudgets: [{ scope: 'user', window: { kind: 'rolling', hours: 0 }, limitTokens: 1 }] }, 'defaultBudgets.0.window.hours'],
    ['top level not an object', [1, 2], '(root)'],
    ['users.autoCreate not a boolean', { users: { autoCreate: 'yes' } }, 'users.autoCreate'],
    ['users.autoCreateProjectId not a project id', { users: { autoCreateProjectId: 'project:lobechat' } }, 'users.autoCreateProjectId'],
  ])('%s → one problem at %s', (_label, content, at) => {
    const file = writeFile(DEFAULT_CONFIG_FILE, content);
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${escape(file)}: ${escape(at)}: `));
  });

  it('LOBE_QUOTA_CONFIG pointing to a missing file → problem', () => {
    const problems = expectProblems(loadConfig({ env: { LOBE_QUOTA_CONFIG: 'missing.json' }, cwd: dir }));
    expect(problems).toEqual([`LOBE_QUOTA_CONFIG: no file at ${path.join(dir, 'missing.json')}`]);
  });

  it.each<[string, Record<string, string>, string]>([
    ['PORT=abc', { PORT: 'abc' }, 'PORT'],
    ['PORT=-1', { PORT: '-1' }, 'PORT'],
    ['PORT=65536', { PORT: '65536' }, 'PORT'],
    ['PORT=80.5', { PORT: '80.5' }, 'PORT'],
    ['PUBLIC_URL not a URL', { PUBLIC_URL: 'quota here' }, 'PUBLIC_URL'],
    ['short ADMIN_TOKEN', { ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN'],
    ['OPENAI_BASE_URL not a URL', { OPENAI_BASE_URL: 'nope' }, 'OPENAI_BASE_URL'],
  ])('%s → a problem naming %s', (_label, env, name) => {
    const problems = expectProblems(loadConfig({ env, cwd: dir }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^environment: ${name}: `));
  });

  it('problems of the environment and the file come back together', () => {
    const file = writeFile(DEFAULT_CONFIG_FILE, { port: -1, host: '' });
    const problems = expectProblems(loadConfig({ env: { PORT: 'abc', ADMIN_TOKEN: 'short' }, cwd: dir }));
    expect(problems.map((p) => p.split(': ').slice(0, 2).join(': ')).sort()).toEqual(
      ['environment: ADMIN_TOKEN', 'environment: PORT', `${file}: host`, `${file}: port`].sort(),
    );
  });
});

describe('loadConfig: prices', () => {
  it('accepts model ids and globs as price keys', () => {
    writeFile(DEFAULT_CONFIG_FILE, { prices: { 'deepseek-chat': { input: 0.27 }, 'deepseek-*': { input: 0.5, output: 1 }, 'llama3.1:8b': { input: 0 } } });
    expect(Object.keys(expectOk(loadConfig({ env: {}, cwd: dir })).prices)).toEqual(['deepseek-chat', 'deepseek-*', 'llama3.1:8b']);
  });

  it('lists every price key that names no model, beside the file’s other problems', () => {
    const file = writeFile(DEFAULT_CONFIG_FILE, {
      port: -1,
      prices: {
        '': { input: 1 },
        '   ': { input: 1 },
        'gpt 4o': { input: 1 },
        'gpt-4o\u001b[31m': { input: 1 },
        [`${'x'.repeat(300)}`]: { input: 1 },
        'bad-*': { input: -1 },
        'DeepSeek-*': { input: 1 },
        'deepseek-*': { input: 1 },
      },
    });
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(problems.map((p) => p.slice(file.length + 2))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^port: /),
        'prices."": must be a model id or a glob, not empty',
        'prices."   ": must be a model id or a glob (`*` for any characters), without whitespace or control characters',
        'prices."gpt 4o": must be a model id or a glob (`*` for any characters), without whitespace or control characters',
        'prices."gpt-4o\\u001b[31m": must be a model id or a glob (`*` for any characters), without whitespace or control characters',
        `prices.${'x'.repeat(300)}: must be at most 256 characters`,
        expect.stringMatching(/^prices\."bad-\*"\.input: /),
        'prices."deepseek-*": names the same models as "DeepSeek-*" (keys are case-insensitive)',
      ]),
    );
    expect(problems).toHaveLength(8);
    expect(problems.join('\n')).not.toContain('\u001b');
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['a list', [{ input: 1 }]],
    ['a string', 'gpt-4o'],
  ])('prices that are not an object (%s) → one problem, no crash', (_label, prices) => {
    const file = writeFile(DEFAULT_CONFIG_FILE, { prices });
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${escape(file)}: prices: `));
  });
});

describe('loadConfig: upstreams', () => {
  const upstreams = [
    { name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_KEY_PROD', models: ['gpt-*', 'o*'] },
    { name: 'deepseek', baseUrl: 'https://api.deepseek.com/v1', apiKeyEnv: 'DEEPSEEK_KEY', models: ['deepseek-*'] },
  ];

  it('reads each upstream key from the environment variable it names', () => {
    writeFile(DEFAULT_CONFIG_FILE, { upstreams });
    const config = expectOk(loadConfig({ env: { OPENAI_KEY_PROD: 'sk-prod', DEEPSEEK_KEY: 'sk-ds' }, cwd: dir }));
    expect(config.upstreams).toEqual([
      { name: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-prod', models: ['gpt-*', 'o*'] },
      { name: 'deepseek', baseUrl: 'https://api.deepseek.com/v1', apiKey: 'sk-ds', models: ['deepseek-*'] },
    ]);
  });

  it('adds OPENAI_BASE_URL / OPENAI_API_KEY as a catch-all after the configured upstreams when set', () => {
    writeFile(DEFAULT_CONFIG_FILE, { upstreams });
    const config = expectOk(loadConfig({ env: { OPENAI_KEY_PROD: 'a', DEEPSEEK_KEY: 'b', OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }, cwd: dir }));
    expect(config.upstreams.map((u) => [u.name, u.baseUrl, u.models])).toEqual([
      ['openai', 'https://api.openai.com/v1', ['gpt-*', 'o*']],
      ['deepseek', 'https://api.deepseek.com/v1', ['deepseek-*']],
      ['openai', 'http://127.0.0.1:11434/v1', ['*']],
    ]);
  });

  it('names every upstream whose key variable is missing, and refuses a key written into the file', () => {
    writeFile(DEFAULT_CONFIG_FILE, { upstreams: [...upstreams, { name: 'x', baseUrl: 'https://x.example/v1', apiKey: 'sk-in-file' }] });
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(problems.join('\n')).toContain('upstreams.2: Unrecognized key: "apiKey"');
    writeFile(DEFAULT_CONFIG_FILE, { upstreams });
    const unset = expectProblems(loadConfig({ env: {}, cwd: dir }));
    expect(unset).toEqual([
      expect.stringContaining('upstreams.0.apiKeyEnv: environment variable OPENAI_KEY_PROD is not set'),
      expect.stringContaining('upstreams.1.apiKeyEnv: environment variable DEEPSEEK_KEY is not set'),
    ]);
  });
});

describe('loadConfig: SMS alert channels', () => {
  const twilio = { type: 'twilio', accountSid: 'AC0123456789abcdef0123456789abcdef', from: '+15005550006', to: ['+8613800138000'], levels: [100] };
  const aliyun = { type: 'aliyun-sms', accessKeyId: 'LTAI5tKey', signName: 'lobe-quota', templateCode: 'SMS_154950909', to: ['13800138000'], levels: [100] };

  it('reads the secrets from the environment, with the vendors\' usual variable names by default', () => {
    writeFile(DEFAULT_CONFIG_FILE, { alerts: { channels: [twilio, aliyun] } });
    const config = expectOk(loadConfig({ env: { TWILIO_AUTH_TOKEN: 't', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's' }, cwd: dir }));
    expect(config.alerts.channels).toEqual([
      { ...twilio, authTokenEnv: 'TWILIO_AUTH_TOKEN', baseUrl: 'https://api.twilio.com' },
      { ...aliyun, accessKeySecretEnv: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET', regionId: 'cn-hangzhou', endpoint: 'https://dysmsapi.aliyuncs.com' },
    ]);
  });

  it('names a secret variable that is not set, a secret written into the file, and malformed numbers and senders', () => {
    writeFile(DEFAULT_CONFIG_FILE, { alerts: { channels: [twilio, { ...aliyun, accessKeySecretEnv: 'ALIYUN_SMS_SECRET' }] } });
    expect(expectProblems(loadConfig({ env: {}, cwd: dir }))).toEqual([
      expect.stringContaining('alerts.channels.0: the twilio channel\'s secret: environment variable TWILIO_AUTH_TOKEN is not set'),
      expect.stringContaining('alerts.channels.1: the aliyun-sms channel\'s secret: environment variable ALIYUN_SMS_SECRET is not set'),
    ]);
    writeFile(DEFAULT_CONFIG_FILE, {
      alerts: {
        channels: [
          { ...twilio, authToken: 'in-file', to: ['138 0013 8000'] },
          { ...twilio, messagingServiceSid: 'MG0123456789abcdef0123456789abcdef' },
          { ...aliyun, to: ['+86-138'] },
        ],
      },
    });
    const problems = expectProblems(loadConfig({ env: {}, cwd: dir })).join('\n');
    expect(problems).toContain('alerts.channels.0: Unrecognized key: "authToken"');
    expect(problems).toContain('alerts.channels.0.to.0: must be an E.164 number');
    expect(problems).toContain('alerts.channels.1.from: give exactly one of "from" and "messagingServiceSid"');
    expect(problems).toContain('alerts.channels.2.to.0: must be a phone number of digits');
  });
});

describe('publicUrlOf', () => {
  it.each<[string, string | null, string, number, string]>([
    ['explicit URL wins', 'https://quota.example.com', '0.0.0.0', 3400, 'https://quota.example.com'],
    ['explicit URL wins over an IPv6 host', 'http://q.local:9999', '::1', 3400, 'http://q.local:9999'],
    ['loopback', null, '127.0.0.1', 3400, 'http://127.0.0.1:3400'],
    ['0.0.0.0 → localhost', null, '0.0.0.0', 3400, 'http://localhost:3400'],
    [':: → localhost', null, '::', 8080, 'http://localhost:8080'],
    ['IPv6 loopback bracketed', null, '::1', 3400, 'http://[::1]:3400'],
    ['IPv6 address bracketed', null, 'fe80::1', 3401, 'http://[fe80::1]:3401'],
    ['host name', null, 'quota.internal', 80, 'http://quota.internal:80'],
    ['the bound port is used (port 0 asked)', null, 'localhost', 54321, 'http://localhost:54321'],
  ])('%s', (_label, publicUrl, host, port, expected) => {
    expect(publicUrlOf({ publicUrl, host }, port)).toBe(expected);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
