import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA_FILE, configJsonSchema } from './json-schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('config JSON Schema', () => {
  it('is committed up to date (run `npm run config:schema` after changing the config schema)', () => {
    const committed = JSON.parse(readFileSync(path.join(root, CONFIG_SCHEMA_FILE), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('describes the default budgets an editor should offer', () => {
    const schema = configJsonSchema() as { properties: Record<string, { description?: string }>; additionalProperties: boolean };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['port', 'host', 'publicUrl', 'dataDir', 'defaultBudgets', 'statusLevels', 'holds', 'alerts']));
    expect(schema.properties.defaultBudgets?.description).toContain('every user 1M tokens a month');
    expect(schema.additionalProperties).toBe(false);
  });
});
