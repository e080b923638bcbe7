import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('lobe-quota.config.example.json', () => {
  it('is a valid config: copied to lobe-quota.config.json it loads with its default budgets', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lobe-quota-example-'));
    try {
      copyFileSync(path.join(root, 'lobe-quota.config.example.json'), path.join(dir, 'lobe-quota.config.json'));
      const loaded = loadConfig({ env: {}, cwd: dir });
      expect(loaded.ok && loaded.config.defaultBudgets.map((b) => [b.scope, b.window.kind, b.limitTokens, b.limitUsd])).toEqual([
        ['user', 'month', 1_000_000, null],
        ['user', 'rolling', null, 2],
        ['global', 'month', null, 500],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
