import { z } from 'zod';
import { configFileSchema } from './schema.js';

/** The JSON Schema of the config file, for editors (`"$schema": "./lobe-quota.config.schema.json"`). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'lobe-quota configuration',
  };
}

export const CONFIG_SCHEMA_FILE = 'lobe-quota.config.schema.json';
