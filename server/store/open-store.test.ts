import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { openStore } from './open-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function opened(database: object | undefined) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-open-'));
  dirs.push(dir);
  if (database) writeFileSync(path.join(dir, 'lobe-quota.config.json'), JSON.stringify({ database }));
  const loaded = loadConfig({ env: { DATA_DIR: dir }, cwd: dir });
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  return openStore(loaded.config, { channelsFor: () => [], projection: false }, 15_000);
}

describe('openStore: SQLite durability', () => {
  it('runs synchronous = NORMAL by default, and FULL (each commit waits for the disk) with database.sqliteSynchronous "full"', async () => {
    const normal = await opened(undefined);
    expect((normal.store as SqliteStore).synchronous).toBe('normal');
    expect(normal.description).not.toContain('synchronous');
    await normal.store.close();

    const full = await opened({ sqliteSynchronous: 'full' });
    expect((full.store as SqliteStore).synchronous).toBe('full');
    expect(full.description).toMatch(/^SQLite: .*lobe-quota\.db, synchronous full$/);
    await full.store.close();
  });

  it('refuses any other value', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-open-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'lobe-quota.config.json'), JSON.stringify({ database: { sqliteSynchronous: 'off' } }));
    const loaded = loadConfig({ env: {}, cwd: dir });
    expect(loaded.ok).toBe(false);
    expect(!loaded.ok && loaded.problems.join('\n')).toContain('database.sqliteSynchronous');
  });
});
