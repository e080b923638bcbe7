#!/usr/bin/env node
// `npx lobe-quota …` from the checkout: build if needed, then run the CLI.
import { ensureBuilt } from '../scripts/ensure-built.js';

ensureBuilt();
await import('../dist/server/cli/main.js');
