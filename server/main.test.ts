import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot as root, startServerProcess } from './testing/server-process.js';

const dirs: string[] = [];
const running: ChildProcess[] = [];
afterEach(async () => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const start = (env: Record<string, string>) => startServerProcess(env, running);

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });

describe('the real server process', () => {
  it('first start: SQLite in DATA_DIR, a printed admin token, the URLs and the next step; then a user reads their /quota', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-main-'));
    dirs.push(dataDir);
    const first = await start({ DATA_DIR: dataDir });
    const out = first.output();
    expect(out).toContain(`(SQLite: ${path.join(dataDir, 'lobe-quota.db')})`);
    for (const suffix of ['/v1', '/manifest.json', '/mcp', '/quota', '/ollama']) expect(out).toContain(`${first.baseUrl}${suffix}`);
    expect(out).toContain(`${first.baseUrl} for Anthropic, Gemini and LobeChat's New API`);
    expect(out).toContain('npx lobe-quota users add alice');
    // Started without OPENAI_API_KEY: said at once, not learnt from every user's failed request.
    expect(out).toContain('Warning: the upstream "openai" has no API key (set OPENAI_API_KEY)');
    const token = /Admin token\s+(lqa-\S+)/.exec(out)?.[1];
    expect(token).toBeDefined();

    const admin = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const post = (p: string, body: unknown, method = 'POST') => fetch(`${first.baseUrl}${p}`, { method, headers: admin, body: JSON.stringify(body) });
    expect((await post('/admin/users', { id: 'alice', name: 'Alice' })).status).toBe(201);
    const { key } = (await (await post('/admin/keys', { userId: 'alice' })).json()) as { key: string };
    expect((await post('/admin/budgets', { scope: 'user:alice', window: { kind: 'day', timeZone: 'Europe/Berlin' }, limitTokens: 5000 }, 'PUT')).status).toBe(201);

    // The CLI as a user runs it from the checkout (bin/lobe-quota.js is what `npx lobe-quota` runs).
    const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'lobe-quota.js'), 'users', 'list'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', LOBE_QUOTA_URL: first.baseUrl, ADMIN_TOKEN: token },
      encoding: 'utf8',
    });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/^id\s+name\s+project\s+external ids\s+created\nalice\s+Alice\s+/);

    const quota = await fetch(`${first.baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } });
    expect(quota.status).toBe(200);
    expect(await quota.json()).toMatchObject({ subject: { id: 'alice', name: 'Alice' }, usage: 0, limit: 5000, unit: 'tokens', remaining: 5000, status: 'normal' });
    expect(await stop(first.child)).toBe(0);

    // Second start on the same data: no new token is printed, the first one still works.
    const second = await start({ DATA_DIR: dataDir });
    expect(second.output()).not.toContain('lqa-');
    expect((await fetch(`${second.baseUrl}/admin/users`, { headers: admin })).status).toBe(200);
    expect((await fetch(`${second.baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect(await stop(second.child)).toBe(0);
  });

  it('a bad configuration stops start-up and lists every problem', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-main-'));
    dirs.push(dataDir);
    const child = spawn(process.execPath, [path.join(root, 'scripts', 'start.js')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', PORT: '99999', DATA_DIR: dataDir, ADMIN_TOKEN: 'short' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.push(child);
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(err).toContain('environment: PORT:');
    expect(err).toContain('environment: ADMIN_TOKEN: must be at least 16 characters');
  });
});
