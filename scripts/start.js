// `npm start`: build if the sources changed, then serve.
import { ensureBuilt } from './ensure-built.js';

ensureBuilt();
await import('../dist/server/main.js');
