// Compiles the TypeScript sources into dist/ when any of them is newer than the last build, so
// `npm start`, `npm run bench` and `npx lobe-quota` work straight from a fresh clone.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.tsbuildinfo');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

export function ensureBuilt() {
  const sources = Math.max(
    ...['server', 'plugin', 'bench'].map((d) => path.join(root, d)).filter(existsSync).map(newestSource),
    statSync(path.join(root, 'tsconfig.json')).mtimeMs,
    statSync(path.join(root, 'tsconfig.build.json')).mtimeMs,
  );
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return;
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // tsc leaves the build info untouched when no output changed; mark the build as current anyway.
  const now = new Date();
  utimesSync(stamp, now, now);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureBuilt();
