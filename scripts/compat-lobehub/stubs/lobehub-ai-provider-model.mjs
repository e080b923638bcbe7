// Stands in for LobeHub 2.x `packages/database/src/models/aiProvider.ts` (a drizzle query on
// PostgreSQL): the row for the built-in provider asked for ("openai", "newapi") with the key vault
// the user saved in Settings → AI providers, already decrypted. `initModelRuntimeFromDB` then runs unchanged.
import { session } from './session.mjs';

export class AiProviderModel {
  constructor(_db, userId) {
    this.userId = userId;
  }

  getAiProviderById = async (id) => ({
    id,
    enabled: true,
    source: 'builtin',
    settings: {},
    config: {},
    keyVaults: { ...session.keyVaults },
  });
}
