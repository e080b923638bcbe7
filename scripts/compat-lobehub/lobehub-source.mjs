// LobeChat's source as its npm tarball ships it (the whole monorepo), cached under .compat/:
// `npm pack`, extract the parts the harness bundles, link the workspace packages the way pnpm
// would, and install the third-party packages the bundle reaches at the ranges LobeChat pins.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** What the harnesses bundle: the app's source, the workspace packages, English messages. */
const EXTRACT = ['package/package.json', 'package/tsconfig.json', 'package/src', 'package/packages', 'package/locales/en-US'];

const slugOf = (spec) => spec.replace(/^@/, '').replace(/[/@]/g, '-');
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/**
 * Downloads (once) and extracts (once) a release. Returns its root, a name for its cache entries,
 * its workspace packages (name → directory) and the tarball's size.
 */
export async function prepareSource(cacheDir, spec, log) {
  const slug = slugOf(spec);
  const packsDir = path.join(cacheDir, 'packs');
  const tarball = path.join(packsDir, `${slug}.tgz`);
  mkdirSync(packsDir, { recursive: true });
  if (!existsSync(tarball)) {
    log(`npm pack ${spec} …`);
    const { stdout } = await run(npm, ['pack', spec, '--json', '--pack-destination', packsDir], { cwd: packsDir, maxBuffer: 64 * 1024 * 1024 });
    const [{ filename }] = JSON.parse(stdout);
    // npm names it after the package (lobehub-lobehub-2.1.26.tgz); keep our own name for the cache.
    const packed = path.join(packsDir, path.basename(filename.replace(/^@/, '').replace('/', '-')));
    if (packed !== tarball) renameSync(packed, tarball);
  }

  const base = path.join(cacheDir, 'src', slug);
  const root = path.join(base, 'package');
  const marker = path.join(base, '.extracted');
  if (!existsSync(marker)) {
    log(`extracting ${path.basename(tarball)} …`);
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', base, ...EXTRACT]);
    writeFileSync(marker, new Date().toISOString());
  }
  return { root, slug, workspace: linkWorkspace(root), tarballBytes: statSync(tarball).size };
}

/** `packages/*` and `packages/business/*`, linked into `node_modules` by their package names. */
function linkWorkspace(root) {
  const dirs = [];
  for (const entry of readdirSync(path.join(root, 'packages'))) {
    const dir = path.join(root, 'packages', entry);
    if (existsSync(path.join(dir, 'package.json'))) dirs.push(dir);
    else if (statSync(dir).isDirectory()) for (const sub of readdirSync(dir)) if (existsSync(path.join(dir, sub, 'package.json'))) dirs.push(path.join(dir, sub));
  }
  const workspace = new Map();
  for (const dir of dirs) {
    const { name } = readJson(path.join(dir, 'package.json'));
    const link = path.join(root, 'node_modules', name);
    workspace.set(name, dir);
    if (existsSync(link)) continue;
    // A link left dangling (e.g. a cache copied from elsewhere) is replaced; new ones are relative.
    rmSync(link, { force: true });
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.relative(path.dirname(link), dir), link, 'dir');
  }
  return workspace;
}

/**
 * The range LobeChat pins for a package: from the workspace package whose file imports it, else
 * from the root package.json (pnpm hoists nothing, but the app's own files use the root's).
 */
function pinnedRange(root, name, importers) {
  const manifests = [];
  for (const importer of importers) {
    let dir = path.dirname(path.join(root, importer));
    while (dir.startsWith(root) && dir !== root) {
      if (existsSync(path.join(dir, 'package.json'))) {
        manifests.push(path.join(dir, 'package.json'));
        break;
      }
      dir = path.dirname(dir);
    }
  }
  manifests.push(path.join(root, 'package.json'));
  for (const file of manifests) {
    const pkg = readJson(file);
    const range = pkg.dependencies?.[name] ?? pkg.devDependencies?.[name] ?? pkg.peerDependencies?.[name];
    if (range !== undefined && !range.startsWith('workspace:')) return range;
  }
  return null;
}

/** Adds packages (name → importers) to the deps directory at LobeChat's ranges. */
export async function installDeps(root, depsDir, missing, log) {
  mkdirSync(depsDir, { recursive: true });
  const manifestFile = path.join(depsDir, 'package.json');
  const manifest = existsSync(manifestFile) ? readJson(manifestFile) : { private: true, description: 'LobeChat dependencies for npm run compat:lobehub', dependencies: {} };
  const unpinned = [];
  for (const [name, importers] of missing) {
    const range = pinnedRange(root, name, [...importers]);
    if (range === null) unpinned.push(`${name} (imported by ${[...importers].join(', ')})`);
    else manifest.dependencies[name] = range;
  }
  if (unpinned.length > 0) throw new Error(`LobeChat's package.json files pin no version for: ${unpinned.join('; ')}`);
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  log(`npm install ${missing.size} packages into ${path.relative(process.cwd(), depsDir)} (${[...missing.keys()].join(', ')}) …`);
  // No install scripts: nothing here needs a native build. Peer ranges (React for icon packages,
  // zod 3 vs 4) are LobeChat's business and are not what this run checks.
  await run(npm, ['install', '--prefix', depsDir, '--ignore-scripts', '--no-audit', '--no-fund', '--legacy-peer-deps', '--loglevel=error'], {
    cwd: depsDir,
    maxBuffer: 64 * 1024 * 1024,
  });
}
