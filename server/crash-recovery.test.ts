import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from './testing/fake-openai.js';
import { eventually } from './testing/harness.js';
import { startServerProcess } from './testing/server-process.js';

/**
 * The real server (as `npm start` runs it) on SQLite, killed with SIGKILL while 20 streams are
 * being delivered, then started again on the same data: what its clients were sent is in the ledger,
 * each stream to within one lease, as recovered and interrupted requests.
 */

const ADMIN = 'crash-recovery-admin-token-0123456789';
const STREAMS = 20;
/** proxy.leaseTokens' default: what a stream may deliver past the count its hold last recorded. */
const LEASE_TOKENS = 256;
const running: ChildProcess[] = [];
let dir: string;
let fake: FakeOpenAI;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-crash-'));
  fake = await startFakeOpenAI();
});

afterAll(async () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('a SQLite server killed mid-stream', () => {
  it('charges what its 20 live streams delivered, to within a lease each, when it starts again', async () => {
    const config = path.join(dir, 'lobe-quota.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 10_000_000 }],
        alerts: { spike: { enabled: false } },
      }),
    );
    const env = { ADMIN_TOKEN: ADMIN, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-upstream', LOBE_QUOTA_CONFIG: config, DATA_DIR: dir };
    const first = await startServerProcess(env, running, 30_000);
    const admin = (base: string, p: string, init: RequestInit = {}) =>
      fetch(`${base}${p}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });
    expect((await admin(first.baseUrl, '/admin/users', { method: 'POST', body: JSON.stringify({ id: 'alice', name: 'Alice' }) })).status).toBe(201);
    const { key } = (await (await admin(first.baseUrl, '/admin/keys', { method: 'POST', body: JSON.stringify({ userId: 'alice' }) })).json()) as { key: string };

    // Long stories, a piece (one token) every few ms: far from done when the process dies.
    fake.enqueue(...Array.from({ length: STREAMS }, () => ({ kind: 'reply' as const, outputTokens: 8_000, chunkDelayMs: 2 })));
    const received = Array.from({ length: STREAMS }, () => 0);
    const client = new OpenAI({ baseURL: `${first.baseUrl}/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
    const streams = received.map(async (_, i) => {
      try {
        const stream = await client.chat.completions.create(
          { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Tell story number ${i}.` }], stream: true },
          { headers: { 'X-Quota-Session': `story-${i}` } },
        );
        for await (const chunk of stream) if (chunk.choices[0]?.delta.content) received[i] = (received[i] ?? 0) + 1;
        return 'finished';
      } catch {
        return 'cut';
      }
    });
    // Every stream has grown its hold at least once (its first lease is 256 tokens).
    await eventually(async () => received.every((n) => n > 2 * LEASE_TOKENS), 30_000, 'every stream to be past its second lease');
    first.child.kill('SIGKILL');
    await exited(first.child);
    expect(await Promise.all(streams)).toEqual(Array(STREAMS).fill('cut'));
    const delivered = [...received];

    // The next start settles them before it serves.
    const second = await startServerProcess(env, running, 30_000);
    const output = second.output();
    expect(output).toContain(`settled ${STREAMS} request(s) cut off by the end of a process`);
    expect(output.indexOf('settled')).toBeLessThan(output.indexOf('listening on'));

    const db = new Database(path.join(dir, 'lobe-quota.db'), { readonly: true });
    try {
      const rows = db
        .prepare<[], { session_id: string; source: string; outcome: string; input_tokens: number; output_tokens: number; cost_micros: number }>(
          'SELECT session_id, source, outcome, input_tokens, output_tokens, cost_micros FROM ledger ORDER BY session_id',
        )
        .all();
      expect(rows).toHaveLength(STREAMS);
      for (const row of rows) {
        const sent = delivered[Number(row.session_id.slice('story-'.length))] as number;
        expect(row).toMatchObject({ source: 'recovered', outcome: 'interrupted' });
        expect(row.input_tokens).toBeGreaterThan(0);
        // What its hold last recorded: at most the piece that asked for room, not yet sent, above
        // what the client got; at most one lease below it.
        expect(row.output_tokens).toBeLessThanOrEqual(sent + 1);
        expect(row.output_tokens).toBeGreaterThanOrEqual(sent - LEASE_TOKENS);
        expect(row.cost_micros).toBeGreaterThan(0);
      }
    } finally {
      db.close();
    }
    const holds = (await (await admin(second.baseUrl, '/admin/holds')).json()) as { holds: unknown[] };
    expect(holds.holds).toEqual([]);
    const quota = (await (await fetch(`${second.baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } })).json()) as { usage: number };
    const report = (await (await admin(second.baseUrl, '/admin/usage?groupBy=user')).json()) as { totals: { totalTokens: number } };
    expect(quota.usage).toBe(report.totals.totalTokens);
    second.child.kill('SIGTERM');
    await exited(second.child);
  }, 90_000);
});
