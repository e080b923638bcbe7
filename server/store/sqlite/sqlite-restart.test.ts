import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { monthlyUserTokens, spend, TTL, userScopes } from '../testing/store-fixtures.js';
import { T0, userWithKey } from '../../testing/harness.js';
import { SqliteStore } from './sqlite-store.js';


const tmpDirs: string[] = [];
afterEach(() => {
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tmpDb = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-store-'));
  tmpDirs.push(dir);
  return path.join(dir, 'lobe-quota.db');
};

describe('SqliteStore restart', () => {
  it('keeps every settled entry, clears the holds of the dead process, and rebuilds counters of changed defaults', async () => {
    const file = tmpDb();
    const defaults = [monthlyUserTokens(1_000)];
    let store = SqliteStore.open({ file, defaultBudgets: defaults, defaultThresholds: [] });
    const { subject } = await userWithKey(store, 'alice');
    await spend(store, subject, 'a', 100, T0);
    await store.reserve({ holdId: 'in-flight', subject, quote: { tokens: 500, micros: 0 }, now: T0, ttlMs: TTL });
    await store.close();

    // Restart without the default: usage goes on, but no budget counts it.
    store = SqliteStore.open({ file, defaultBudgets: [], defaultThresholds: [] });
    expect(await store.listHolds()).toEqual([]);
    await spend(store, subject, 'b', 50, T0 + 1);
    await store.close();

    // The default comes back: its counter must include 'b', not resume a stale 100.
    store = SqliteStore.open({ file, defaultBudgets: defaults, defaultThresholds: [] });
    const [state] = await store.budgetStates(userScopes(subject), T0 + 2);
    expect(state?.usage).toEqual({ usedTokens: 150, usedMicros: 0, reservedTokens: 0, reservedMicros: 0 });
    await store.close();
  });
});
