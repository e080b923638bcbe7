import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * LobeChat's own New API provider code, bundled from LobeHub's npm tarball the way
 * `npm run compat:lobehub` bundles its harnesses (scripts/compat-lobehub/bundle.mjs): LobeChat's
 * monorepo resolution, the third-party versions it pins. It needs what that run leaves under
 * `.compat/` (the tarball, its extracted source and LobeChat's dependencies); without them the tests
 * that use it are skipped, as they need the npm registry to fetch them.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const CACHE_DIR = path.join(repoRoot, '.compat');
const SPEC = '@lobehub/lobehub@2.1.26';
const SLUG = 'lobehub-lobehub-2.1.26';

/** What the provider module gives: `params.models` lists models with the prices it read from `/api/pricing`. */
export interface NewApiProvider {
  params: {
    models(options: { client: unknown }): Promise<LobeModelCard[]>;
  };
  /** The OpenAI SDK at the version LobeChat pins: `params.models` calls its `models.list()`. */
  OpenAI: new (options: { apiKey: string; baseURL: string; maxRetries?: number }) => unknown;
}

export interface LobeModelCard {
  id: string;
  pricing?: { units: Array<{ name: string; rate: number; strategy: string; unit: string }> };
}

/** Whether `.compat/` holds what bundling needs, with nothing to download. */
export function lobehubSourceAvailable(): boolean {
  return [
    path.join(CACHE_DIR, 'packs', `${SLUG}.tgz`),
    path.join(CACHE_DIR, 'src', SLUG, '.extracted'),
    path.join(CACHE_DIR, 'deps', SLUG, 'node_modules', 'openai'),
  ].every((p) => existsSync(p));
}

/** Bundles the provider into `outDir` and loads it. */
export async function bundleNewApiProvider(outDir: string): Promise<NewApiProvider> {
  const scripts = path.join(repoRoot, 'scripts', 'compat-lobehub');
  const { bundleHarness } = (await import(pathToFileURL(path.join(scripts, 'bundle.mjs')).href)) as { bundleHarness: (o: object) => Promise<unknown> };
  const { prepareSource } = (await import(pathToFileURL(path.join(scripts, 'lobehub-source.mjs')).href)) as {
    prepareSource: (cacheDir: string, spec: string, log: (line: string) => void) => Promise<{ root: string; workspace: Map<string, string> }>;
  };
  // Everything is in place (lobehubSourceAvailable): this only lists the workspace packages.
  const source = await prepareSource(CACHE_DIR, SPEC, () => undefined);
  const outfile = path.join(outDir, 'newapi-provider.mjs');
  await bundleHarness({
    root: source.root,
    entryPoints: [path.join(here, 'newapi-provider.mjs')],
    harnessDir: here,
    workspace: source.workspace,
    depsDir: path.join(CACHE_DIR, 'deps', SLUG),
    stubFiles: { 'packages/model-runtime/src/core/RouterRuntime/index': path.join(here, 'router-runtime-stub.mjs') },
    stubPackages: {},
    unreached: [],
    outfile,
  });
  return (await import(pathToFileURL(outfile).href)) as NewApiProvider;
}
