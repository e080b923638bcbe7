// Bundles one of our harness entry points together with LobeChat's own source, as LobeChat's
// monorepo would resolve it: `@/…` through the tarball's tsconfig paths, the workspace packages
// (`@lobechat/*`, `model-bank`, …) from its `packages/`, and third-party packages from a
// directory holding exactly the versions LobeChat pins (never from lobe-quota's node_modules,
// which has other majors of openai, zod and the MCP SDK).
import { builtinModules } from 'node:module';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
export const packageNameOf = (specifier) => {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
};

const isBare = (specifier) => !/^(\.|\/|@\/|~)/.test(specifier) && !specifier.startsWith('lobehub:');
const inside = (dir, file) => file === dir || file.startsWith(dir + path.sep);
const relativeNoExt = (root, file) => path.relative(root, file).replace(/\.(m|c)?[jt]sx?$/, '');

/**
 * @param {object} o
 * @param {string} o.root            the extracted tarball (`…/package`)
 * @param {string[]} o.entryPoints   our harness files
 * @param {string} o.harnessDir      where the harness and stub files live (they may import like LobeChat files)
 * @param {Map<string,string>} o.workspace  workspace package name → its directory
 * @param {string} o.depsDir         `npm install --prefix` directory with LobeChat's third-party deps
 * @param {Record<string,string>} o.stubFiles   tarball file (relative, no extension) → our stub file
 * @param {Record<string,string>} o.stubPackages bare package (or subpath) → our stub file
 * @param {string[]} o.unreached     packages replaced by a module that throws when used
 * @param {string} [o.outfile]       where to write; omitted: a dry run that only lists missing deps
 * @returns {Promise<{missing: Map<string, Set<string>>}>} third-party packages not installed yet, with who imports them
 */
export async function bundleHarness(o) {
  const root = realpathSync(o.root);
  const depsDir = realpathSync(o.depsDir);
  const harnessDir = realpathSync(o.harnessDir);
  const missing = new Map();
  const dryRun = o.outfile === undefined;

  const ours = (importer) => inside(root, importer) || inside(harnessDir, importer);

  const plugin = {
    name: 'lobehub-monorepo',
    setup(build) {
      const resolveInner = (specifier, args, resolveDir) =>
        build.resolve(specifier, { kind: args.kind, importer: args.importer, resolveDir, pluginData: { inner: true } });

      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.inner) return undefined;
        const spec = args.path;
        if (BUILTINS.has(spec)) return { path: spec, external: true };
        if (o.stubPackages[spec]) return { path: o.stubPackages[spec] };
        if (isBare(spec) && o.unreached.includes(packageNameOf(spec))) return { path: packageNameOf(spec), namespace: 'unreached' };
        if (!ours(args.importer) || args.importer === '') return undefined;

        let resolved;
        if (spec.startsWith('lobehub:')) {
          resolved = await resolveInner(`./${spec.slice('lobehub:'.length)}`, args, root);
        } else if (spec.startsWith('@/') && inside(harnessDir, args.importer)) {
          // The harness sits outside the tarball: resolve from its root, where its tsconfig paths apply.
          resolved = await resolveInner(spec, args, root);
        } else if (isBare(spec)) {
          const name = packageNameOf(spec);
          if (o.workspace.has(name)) {
            resolved = await resolveInner(spec, args, root);
          } else {
            resolved = await resolveInner(spec, args, depsDir);
            // Anything found outside the deps directory (lobe-quota's own node_modules, an
            // ancestor's) would be a version LobeChat does not pin: count it as missing.
            if (resolved.errors.length > 0 || !inside(depsDir, realpathSync(resolved.path))) {
              if (!missing.has(name)) missing.set(name, new Set());
              missing.get(name).add(path.relative(root, args.importer));
              return { path: spec, external: true };
            }
          }
        } else {
          resolved = await resolveInner(spec, args, args.resolveDir);
        }
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        const stub = inside(root, resolved.path) ? o.stubFiles[relativeNoExt(root, resolved.path)] : undefined;
        return stub ? { path: stub } : resolved;
      });

      build.onLoad({ filter: /.*/, namespace: 'unreached' }, (args) => ({
        loader: 'js',
        contents: `
          // ${args.path}: imported on this path but never called by it (see targets.mjs). Any
          // call or construction throws; a named import reads as undefined, so using one when a
          // module loads fails at once too.
          const fail = () => { throw new Error(${JSON.stringify(`${args.path} is not installed for compat:lobehub (only the providers it drives run: OpenAI, and New API on 2.x); LobeChat called into it unexpectedly`)}); };
          const unreached = new Proxy(function unreached() {}, {
            get: (target, key) => (key === 'then' || typeof key === 'symbol' ? undefined : key === 'prototype' ? target.prototype : unreached),
            apply: fail,
            construct: fail,
          });
          module.exports = unreached;`,
      }));
    },
  };

  await esbuild.build({
    entryPoints: o.entryPoints,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The OpenAI SDK names itself in User-Agent after its class (`OpenAI/JS 4.x`): keep the names.
    keepNames: true,
    outfile: o.outfile,
    write: !dryRun,
    absWorkingDir: root,
    logLevel: dryRun ? 'silent' : 'warning',
    // Some of LobeChat's dependencies are CommonJS that calls require() for node built-ins.
    banner: { js: "import { createRequire as __lqCreateRequire } from 'node:module'; const require = __lqCreateRequire(import.meta.url);" },
    define: { 'process.env.NODE_ENV': '"production"' },
    loader: { '.md': 'text', '.svg': 'text', '.png': 'empty', '.css': 'empty', '.node': 'empty' },
    logOverride: { 'empty-import-meta': 'silent', 'direct-eval': 'silent', 'commonjs-variable-in-esm': 'silent' },
    plugins: [plugin],
  }).catch((error) => {
    // A dry run only wants the list of missing packages; a failure for lack of them is expected.
    if (!dryRun || missing.size === 0) throw error;
  });
  if (!dryRun && missing.size > 0) throw new Error(`not installed: ${[...missing.keys()].join(', ')}`);
  return { missing };
}
