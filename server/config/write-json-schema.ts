// `npm run config:schema`: regenerates lobe-quota.config.schema.json from the zod schema.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_SCHEMA_FILE, configJsonSchema } from './json-schema.js';

const file = path.resolve(CONFIG_SCHEMA_FILE);
writeFileSync(file, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${file}`);
