// compose.yaml, checked without starting it: LobeHub's and PostgreSQL's images are not reachable
// from these machines, so the file is read as Compose reads it (YAML, with .env.example's values
// interpolated) and its wiring compared with what lobe-quota and LobeHub expect. podman-compose,
// when installed, resolves it too (`--dry-run`: the podman commands it would run).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { installed, run } from './processes.mjs';

/** KEY=value lines, as Compose reads a .env file (comments and blank lines skipped). */
export function parseEnvFile(text) {
  const vars = {};
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match) vars[match[1]] = match[2].trim();
  }
  return vars;
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (an empty value counts as unset for `:`). */
export function interpolate(value, vars) {
  return String(value).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_, name, op, arg) => {
    const v = vars[name];
    const unset = v === undefined || (op?.startsWith(':') && v === '');
    if (op?.endsWith('?') && unset) throw new Error(`${name}: ${arg}`);
    if (op?.endsWith('-') && unset) return arg;
    return v ?? '';
  });
}

/** An environment list or map as a map. */
const envMap = (environment) =>
  Array.isArray(environment) ? Object.fromEntries(environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) : { ...(environment ?? {}) };

export function loadCompose(repoRoot) {
  const text = readFileSync(path.join(repoRoot, 'compose.yaml'), 'utf8');
  const envExample = parseEnvFile(readFileSync(path.join(repoRoot, '.env.example'), 'utf8'));
  return { text, file: yaml.load(text), envExample };
}

/** The service's environment as Compose would pass it, with `vars` for the .env file. */
export function serviceEnv(compose, service, vars) {
  const env = envMap(compose.file.services[service].environment);
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v ?? '', vars)]));
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** Each check: a name and a function that throws when it fails (or returns a detail). */
export function composeChecks(compose, repoRoot) {
  const { file, text, envExample } = compose;
  const services = file.services ?? {};
  const env = (service) => serviceEnv(compose, service, envExample);
  return [
    [
      'compose.yaml: three services, lobe-quota built from this Dockerfile',
      () => {
        expect(JSON.stringify(Object.keys(services).sort()) === '["lobe-quota","lobehub","postgres"]', `services: ${Object.keys(services)}`);
        expect(services['lobe-quota'].build === '.', 'lobe-quota: build is not "."');
        expect(services.lobehub.image?.startsWith('lobehub/lobehub'), `lobehub: image ${services.lobehub.image}`);
        return `images: lobe-quota (build .), ${services.postgres.image}, ${services.lobehub.image}`;
      },
    ],
    [
      'compose.yaml: every ${VAR} is set in .env.example (Compose warns about none, interpolates all)',
      () => {
        const used = [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))];
        const missing = used.filter((name) => !(name in envExample) && !new RegExp(`\\$\\{${name}:-`).test(text));
        expect(missing.length === 0, `not in .env.example and without a default: ${missing.join(', ')}`);
        for (const service of Object.keys(services)) env(service);
        return `${used.length} variables`;
      },
    ],
    [
      'compose.yaml: lobe-quota on PostgreSQL (its own database), /data on a volume, a stop grace above 10 s',
      () => {
        const e = env('lobe-quota');
        expect(/^postgres:\/\/lobe_quota:[^@]+@postgres:5432\/lobe_quota$/.test(e.DATABASE_URL), `DATABASE_URL: ${e.DATABASE_URL}`);
        expect(services['lobe-quota'].volumes.some((v) => /^[\w-]+:\/data$/.test(v) && v.split(':')[0] in (file.volumes ?? {})), 'no named volume on /data');
        expect(services['lobe-quota'].depends_on?.postgres?.condition === 'service_healthy', 'does not wait for postgres to be healthy');
        const grace = /^(\d+)s$/.exec(services['lobe-quota'].stop_grace_period ?? '');
        expect(grace && Number(grace[1]) > 10, `stop_grace_period: ${services['lobe-quota'].stop_grace_period}`);
        expect(e.ADMIN_TOKEN === '', 'ADMIN_TOKEN is set by default: the first start would print none');
        return `DATABASE_URL=${e.DATABASE_URL.replace(/:[^:@]+@/, ':…@')}`;
      },
    ],
    [
      'compose.yaml: PostgreSQL creates lobe-quota\'s role and database on first start, and has a health check',
      () => {
        const init = services.postgres.volumes.find((v) => v.includes('/docker-entrypoint-initdb.d/'));
        expect(init, 'no init script mounted');
        const hostPath = path.resolve(repoRoot, init.split(':')[0]);
        expect(existsSync(hostPath), `${hostPath} does not exist`);
        expect(services.postgres.healthcheck?.test, 'no healthcheck');
        expect(env('postgres').LOBE_QUOTA_DB_PASSWORD === envExample.LOBE_QUOTA_DB_PASSWORD, 'the init script does not get LOBE_QUOTA_DB_PASSWORD');
        return path.relative(repoRoot, hostPath);
      },
    ],
    [
      'compose.yaml: LobeHub wired to lobe-quota (service key, /v1, native Anthropic and Google URLs) and to PostgreSQL',
      () => {
        const e = env('lobehub');
        const vars = { ...envExample, LOBE_QUOTA_SERVICE_KEY: 'lq-service-key' };
        const withKey = serviceEnv(compose, 'lobehub', vars);
        const wanted = {
          OPENAI_API_KEY: 'lq-service-key',
          OPENAI_PROXY_URL: 'http://lobe-quota:3400/v1',
          ANTHROPIC_API_KEY: 'lq-service-key',
          ANTHROPIC_PROXY_URL: 'http://lobe-quota:3400',
          GOOGLE_API_KEY: 'lq-service-key',
          GOOGLE_PROXY_URL: 'http://lobe-quota:3400',
        };
        for (const [k, v] of Object.entries(wanted)) expect(withKey[k] === v, `${k}=${withKey[k]}, wanted ${v}`);
        expect(/^postgresql:\/\/postgres:[^@]+@postgres:5432\/lobechat$/.test(e.DATABASE_URL), `DATABASE_URL: ${e.DATABASE_URL}`);
        for (const k of ['APP_URL', 'KEY_VAULTS_SECRET', 'AUTH_SECRET']) expect(e[k], `${k} is empty`);
        expect(e.ENABLED_ANTHROPIC === '0' && e.ENABLED_GOOGLE === '0', 'native providers shown before lobe-quota has their upstreams');
        const native = serviceEnv(compose, 'lobehub', { ...vars, NATIVE_PROVIDERS: '1' });
        expect(native.ENABLED_ANTHROPIC === '1' && native.ENABLED_GOOGLE === '1', 'NATIVE_PROVIDERS=1 does not show them');
        expect(services.lobehub.depends_on?.['lobe-quota']?.condition === 'service_healthy', 'does not wait for lobe-quota to be healthy');
        expect(/http:\/\/lobe-quota:3400\/mcp/.test(text), 'no MCP URL in the comments');
        return Object.entries(wanted).filter(([k]) => k.endsWith('URL')).map(([k, v]) => `${k}=${v}`).join(', ');
      },
    ],
    [
      'compose.yaml: LOBE_QUOTA_CONFIG=/config/native-providers.json names a file the mount provides',
      () => {
        const mount = services['lobe-quota'].volumes.find((v) => v.split(':')[1] === '/config');
        expect(mount, 'no /config mount');
        const file = path.resolve(repoRoot, mount.split(':')[0], 'native-providers.json');
        expect(existsSync(file), `${file} does not exist`);
        return path.relative(repoRoot, file);
      },
    ],
  ];
}

/**
 * `podman-compose --dry-run up --no-build` on a copy of compose.yaml with .env.example as its .env:
 * the `podman run` command line of each service. Undefined when podman-compose is not installed.
 * podman-compose creates the project's volumes and network even in a dry run; they are removed.
 */
export async function podmanComposeDryRun(repoRoot) {
  if (!(await installed('podman-compose'))) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'lq-compose-'));
  const project = path.basename(dir).toLowerCase().replace(/[^a-z0-9]/g, '');
  try {
    copyFileSync(path.join(repoRoot, 'compose.yaml'), path.join(dir, 'compose.yaml'));
    copyFileSync(path.join(repoRoot, '.env.example'), path.join(dir, '.env'));
    const { stdout, stderr } = await run('podman-compose', ['--dry-run', '-p', project, 'up', '--no-build', '-d'], { cwd: dir, allowFailure: true });
    const output = stdout + stderr;
    const commands = {};
    for (const line of output.split('\n')) {
      const service = /^podman run .*--label com\.docker\.compose\.service=([\w-]+)/.exec(line)?.[1];
      if (service) commands[service] = line;
    }
    return { commands, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    const volumes = await run('podman', ['volume', 'ls', '-q', '--filter', `label=io.podman.compose.project=${project}`], { allowFailure: true });
    for (const volume of volumes.stdout.split('\n').filter(Boolean)) await run('podman', ['volume', 'rm', volume], { allowFailure: true });
    await run('podman', ['network', 'rm', `${project}_default`], { allowFailure: true });
  }
}

/** The `-e NAME=value` pairs of a `podman run` line (values without spaces, as podman-compose prints them). */
export const envOfRunLine = (line) => Object.fromEntries([...line.matchAll(/ -e ([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)].map((m) => [m[1], m[2]]));
