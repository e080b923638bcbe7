// `npm run test:image`: the Dockerfile and compose.yaml, checked the way users run them.
//
//  1. A stand-in for node:20-bookworm-slim (no container registry is reachable from these machines;
//     scripts/test-image/base-image.mjs), built once and kept in podman's store.
//  2. `podman build` of the Dockerfile, unchanged (timed; the image's size and config reported).
//  3. The image run with a volume and the tests' fake OpenAI upstream (on the host's loopback):
//     banner and admin token, /health and the image's HEALTHCHECK, the process's uid, a metered
//     chat through the openai SDK, the ledger in a new container on the same volume, and SIGTERM
//     while a stream is in flight (it finishes, is settled once, and the process exits 0).
//  4. compose.yaml read as Compose reads it (LobeHub's and PostgreSQL's images cannot be pulled
//     here), podman-compose's dry run of it, and lobe-quota's service as compose.yaml configures
//     it, on the host's PostgreSQL in a database of its own, created by the compose file's init
//     script and dropped afterwards.
//
// Needs root, podman and debootstrap (apt-get install podman debootstrap runc uidmap; podman-compose
// optional), the npm registry and Debian's mirror, a PostgreSQL on 127.0.0.1:5432 for step 4 (trust
// auth, as on these machines), and about 1.5 GB in podman's store. Not part of `npm test`.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import OpenAI from 'openai';
import { BASE_IMAGE, ensureBaseImage } from './test-image/base-image.mjs';
import { composeChecks, envOfRunLine, loadCompose, podmanComposeDryRun, serviceEnv } from './test-image/compose-file.mjs';
import { Container, findRunRoute } from './test-image/containers.mjs';
import { installed, run, waitUntil } from './test-image/processes.mjs';
import { adminClient } from './compat-lobehub/lobe-quota.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workDir = path.join(repoRoot, '.image-test');
const IMAGE = 'localhost/lobe-quota:test';
const RUN_ID = randomBytes(3).toString('hex');
const UPSTREAM_KEY = 'sk-fake-upstream';
const MODEL = 'gpt-4o-mini';
/** `npm run test:image -- --no-cache`: build every layer again (to time a build from scratch). */
const NO_CACHE = process.argv.includes('--no-cache');

// ---------------------------------------------------------------------------------------------
// Reporting: one line per check, and the plain closing line.

const results = { passed: 0, failed: 0, skipped: 0 };
const section = (title) => console.log(`\n${title}`);
const note = (line) => console.log(`  … ${line}`);

/** Runs one check; a failure is reported and ends the run when `fatal` (later checks need it). */
async function check(name, fn, { fatal = false } = {}) {
  try {
    const detail = await fn();
    results.passed += 1;
    console.log(`  ok    ${name}${detail ? `: ${detail}` : ''}`);
  } catch (error) {
    results.failed += 1;
    console.log(`  FAIL  ${name}\n        ${String(error.message).split('\n').join('\n        ')}`);
    if (fatal) throw new StopRun();
  }
}

function skip(name, reason) {
  results.skipped += 1;
  console.log(`  skip  ${name}: ${reason}`);
}

class StopRun extends Error {}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// Helpers: a free port, the fake upstream, lobe-quota's admin API.

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** server/testing/fake-openai.ts, the tests' upstream, bundled to run here on the host. */
async function startFakeUpstream() {
  const out = path.join(workDir, 'fake-openai.mjs');
  await esbuild.build({
    entryPoints: [path.join(repoRoot, 'server', 'testing', 'fake-openai.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    logLevel: 'warning',
  });
  const { startFakeOpenAI } = await import(pathToFileURL(out).href);
  return startFakeOpenAI({ models: [MODEL] });
}


/** Alice with a key and a monthly budget: what the README's quick start does. */
async function aliceWithBudget(api, limitTokens) {
  await api('POST', '/admin/users', { id: 'alice', name: 'Alice' });
  const { key } = await api('POST', '/admin/keys', { userId: 'alice', name: 'image test' });
  await api('PUT', '/admin/budgets', { scope: 'user:alice', window: { kind: 'month', timeZone: 'UTC' }, limitTokens });
  return key;
}

async function quotaOf(baseUrl, key) {
  const response = await fetch(`${baseUrl}/quota`, { headers: { authorization: `Bearer ${key}` } });
  expect(response.ok, `/quota → ${response.status}`);
  return response.json();
}

async function ledgerOf(api) {
  const usage = await api('GET', '/admin/usage?groupBy=user');
  const outcomes = await api('GET', '/admin/outcomes');
  const alice = usage.rows.find((r) => r.user === 'alice') ?? { requests: 0, totalTokens: 0 };
  return { requests: alice.requests, totalTokens: alice.totalTokens, outcomes: outcomes.outcomes };
}

const adminTokenIn = (banner) => /Admin token\s+(\S+)\n\s+shown once/.exec(banner)?.[1];

// ---------------------------------------------------------------------------------------------

async function buildImage() {
  section('Build');
  note(`base image ${BASE_IMAGE}: ${await ensureBaseImage({ workDir, log: note })}`);
  const buildLog = path.join(workDir, 'build.log');
  let seconds = 0;
  await check(
    'podman build of the Dockerfile, unchanged',
    async () => {
      const started = Date.now();
      await run('nice', ['-n', '10', 'podman', 'build', '--isolation=chroot', '--format', 'docker', ...(NO_CACHE ? ['--no-cache'] : []), '-t', IMAGE, '-f', path.join(repoRoot, 'Dockerfile'), repoRoot], {
        logFile: buildLog,
      });
      seconds = (Date.now() - started) / 1000;
      return `${seconds.toFixed(0)} s (log: ${path.relative(repoRoot, buildLog)})`;
    },
    { fatal: true },
  );
  await check('build context (.dockerignore): the sources only, no data/, node_modules/, dist/, tests, .env or scratch', async () => {
    // The context as the builder receives it: a throwaway image that copies all of it.
    const dockerfile = path.join(workDir, 'Dockerfile.context');
    writeFileSync(dockerfile, `FROM ${BASE_IMAGE}\nCOPY . /context\n`);
    await run('podman', ['build', '--isolation=chroot', '-q', '-t', 'localhost/lobe-quota:test-context', '-f', dockerfile, repoRoot]);
    const mount = (await run('podman', ['image', 'mount', 'localhost/lobe-quota:test-context'])).stdout.trim();
    try {
      const files = readdirSync(path.join(mount, 'context'), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(path.join(mount, 'context'), path.join(entry.parentPath ?? entry.path, entry.name)));
      const unwanted = files.filter((f) => /(^|\/)(data|node_modules|dist|\.compat|\.image-test|\.git|testing)\/|\.test\.ts$|\.test-util\.ts$|(^|\/)\.env$|\.db(-wal|-shm)?$/.test(f));
      expect(unwanted.length === 0, `sent to the builder: ${unwanted.slice(0, 10).join(', ')}`);
      for (const wanted of ['package-lock.json', 'server/main.ts', 'plugin/manifest.ts', 'public/card.html']) expect(files.includes(wanted), `${wanted} is missing`);
      const left = ['data', 'node_modules', 'dist', '.env', '.image-test', '.compat'].filter((f) => existsSync(path.join(repoRoot, f)));
      return `${files.length} files${left.length ? `; left out although present here: ${left.join(', ')} and the tests` : ''}`;
    } finally {
      await run('podman', ['image', 'unmount', 'localhost/lobe-quota:test-context'], { allowFailure: true });
      await run('podman', ['rmi', '-f', 'localhost/lobe-quota:test-context'], { allowFailure: true });
    }
  });

  const megabytes = async (image) => Number((await run('podman', ['image', 'inspect', image, '--format', '{{.Size}}'])).stdout) / 1e6;
  const [size, baseSize] = [await megabytes(IMAGE), await megabytes(BASE_IMAGE)];
  note(`build time ${seconds.toFixed(0)} s; image size ${size.toFixed(0)} MB (${BASE_IMAGE}: ${baseSize.toFixed(0)} MB, lobe-quota's layers: ${(size - baseSize).toFixed(0)} MB)`);

  await check('image config: user node, port 3400, volume /data, HEALTHCHECK on /health, STOPSIGNAL SIGTERM, CMD node dist/server/main.js', async () => {
    const [config] = JSON.parse((await run('podman', ['image', 'inspect', IMAGE])).stdout);
    const c = config.Config;
    expect(c.User === 'node', `User: ${c.User}`);
    expect(c.ExposedPorts && '3400/tcp' in c.ExposedPorts, `ExposedPorts: ${JSON.stringify(c.ExposedPorts)}`);
    expect(c.Volumes && '/data' in c.Volumes, `Volumes: ${JSON.stringify(c.Volumes)}`);
    expect(c.Env.includes('DATA_DIR=/data') && c.Env.includes('PORT=3400') && c.Env.includes('HOST=0.0.0.0'), `Env: ${c.Env}`);
    const health = config.Healthcheck ?? c.Healthcheck;
    expect(health?.Test?.join(' ').includes('/health'), `Healthcheck: ${JSON.stringify(health)}`);
    expect(c.Cmd?.join(' ') === 'node dist/server/main.js', `Cmd: ${c.Cmd}`);
    expect(c.StopSignal === 'SIGTERM', `StopSignal: ${c.StopSignal}`);
  });
}

async function runImage(route, fake) {
  section('Run (SQLite on a volume, the fake OpenAI upstream on the host)');
  const volume = `lq-image-test-${RUN_ID}`;
  await run('podman', ['volume', 'create', volume]);
  const env = { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: UPSTREAM_KEY };
  const port = await freePort();
  const containers = [];
  const container = (n) => {
    const c = new Container({ route, image: IMAGE, name: `${volume}-${n}`, volume, port, env });
    containers.push(c);
    return c;
  };
  try {
    await check('image contents: production dependencies only, none of our tests, nothing in /data', async () => {
      const probe = await run('podman', [...route.global, 'run', '--rm', '--network', 'host', ...route.args, IMAGE, 'sh', '-c',
        'cd /app/node_modules && ls -d * @*/*; echo ---; find /app -path /app/node_modules -prune -o \\( -name "*.test.*" -o -name "*.test-util.*" -o -path "*/testing/*" \\) -print; ls -A /data']);
      const [listing, rest] = probe.stdout.split('---\n');
      const packages = listing.split('\n').filter((name) => name && !name.startsWith('.') && !/^@[^/]+$/.test(name));
      const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')).packages;
      const devOnly = packages.filter((name) => lock[`node_modules/${name}`]?.dev === true);
      expect(devOnly.length === 0, `development dependencies in the image: ${devOnly.join(', ')}`);
      expect(rest.trim() === '', `tests or data in the image: ${rest.trim()}`);
      const devCount = Object.keys(lock).filter((k) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(k) && lock[k].dev === true).length;
      return `${packages.length} packages, none of the lockfile's ${devCount} development-only ones`;
    });

    const first = container(1);
    let token;
    await check('start-up banner: listening, SQLite in /data, the admin token printed', async () => {
      const banner = await first.start();
      token = adminTokenIn(banner);
      expect(token, `no admin token in:\n${banner}`);
      expect(banner.includes('SQLite: /data/lobe-quota.db'), `store not in /data:\n${banner}`);
      return `"${banner.split('\n')[0]}"`;
    }, { fatal: true });
    const api = adminClient(first.url, token);

    await check('GET /health', async () => {
      const response = await fetch(`${first.url}/health`);
      const body = await response.json();
      expect(response.status === 200 && body.ok === true && body.store === 'sqlite', `${response.status} ${JSON.stringify(body)}`);
      return `${response.status} ${JSON.stringify(body)}`;
    });

    await check("the image's HEALTHCHECK (podman healthcheck run)", async () => {
      const result = await first.healthcheck();
      expect(result.code === 0, `exit ${result.code}: ${result.stdout}${result.stderr}`);
      return (result.stdout.trim() || 'healthy');
    });

    await check('the server is not root: PID 1 runs as node (uid 1000), and so is its database file', async () => {
      const main = await first.mainProcess();
      expect(main.uid !== 0 && main.uid === 1000, `uid ${main.uid}`);
      expect(main.command === 'node dist/server/main.js', `PID 1 is "${main.command}"`);
      const db = statSync(`/proc/${main.pid}/root/data/lobe-quota.db`);
      expect(db.uid === 1000, `lobe-quota.db belongs to uid ${db.uid}`);
      return `uid ${main.uid}, gid ${main.gid}, "${main.command}"`;
    });

    let key;
    let firstChat;
    await check('a metered chat through the openai SDK: the budget and the ledger show it', async () => {
      key = await aliceWithBudget(api, 100_000);
      const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: key, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello from the image test' }] });
      expect(completion.choices[0].message.content?.includes('hi'), `answer: ${JSON.stringify(completion.choices[0])}`);
      firstChat = completion.usage.total_tokens;
      const quota = await quotaOf(first.url, key);
      expect(quota.usage === firstChat && quota.limit === 100_000, `/quota: usage ${quota.usage}, limit ${quota.limit}; the upstream reported ${firstChat}`);
      const ledger = await ledgerOf(api);
      expect(ledger.requests === 1 && ledger.totalTokens === firstChat, `ledger: ${JSON.stringify(ledger)}`);
      return `${firstChat} tokens charged; /quota ${quota.usage} / ${quota.limit} (${quota.status})`;
    }, { fatal: true });

    await check('the CLI inside the container (`docker compose exec lobe-quota lobe-quota …`, as the README shows)', async () => {
      // compose.yaml's container listens on 3400, the CLI's default; here the host's network is shared.
      const exec = (...args) => first.podman(['exec', '-e', `ADMIN_TOKEN=${token}`, '-e', `LOBE_QUOTA_URL=${first.url}`, first.name, 'lobe-quota', ...args]);
      await exec('users', 'add', 'lobehub', '--name', 'LobeHub server');
      const created = (await exec('keys', 'create', '--user', 'lobehub', '--name', 'lobehub', '--service')).stdout;
      expect(/lq-\S+/.test(created), `keys create printed:\n${created}`);
      const budgets = (await exec('budgets', 'list')).stdout;
      expect(budgets.includes('user:alice'), `budgets list:\n${budgets}`);
      return 'users add, keys create --service, budgets list';
    });

    let second;
    await check('the ledger survives a new container on the same volume; the admin token is not printed again', async () => {
      await first.stop();
      await first.remove();
      second = container(2);
      const banner = await second.start();
      expect(!banner.includes(token) && adminTokenIn(banner) === undefined, `the token was printed again:\n${banner}`);
      expect(banner.includes('the one printed on first start'), `banner:\n${banner}`);
      const ledger = await ledgerOf(adminClient(second.url, token));
      expect(ledger.requests === 1 && ledger.totalTokens === firstChat, `ledger after restart: ${JSON.stringify(ledger)}`);
      const quota = await quotaOf(second.url, key);
      expect(quota.usage === firstChat, `/quota after restart: ${quota.usage}`);
      return `${ledger.requests} request, ${ledger.totalTokens} tokens; alice's key and the admin token still work`;
    }, { fatal: true });

    await check('SIGTERM with a stream in flight: the stream finishes, is settled, the process exits 0', async () => {
      const PIECES = 20;
      fake.enqueue({ kind: 'reply', outputTokens: PIECES, chunkDelayMs: 150 });
      const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: key, maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'A slow answer, please' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let pieces = 0;
      let finish;
      let usage;
      let stopping;
      let servedAtSigterm;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) pieces += 1;
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
        if (chunk.usage) usage = chunk.usage;
        // `podman stop` sends SIGTERM while the answer is still coming; once the server says it got
        // it, the upstream's count of pieces sent so far shows the stream was not over yet.
        if (pieces === 3 && !stopping) {
          stopping = second.stop(30);
          await waitUntil(async () => (await second.logs()).includes('lobe-quota: SIGTERM, closing'), { timeoutMs: 10_000, everyMs: 50, what: 'the shutdown line' });
          servedAtSigterm = fake.requests.at(-1).servedPieces;
        }
      }
      expect(servedAtSigterm < PIECES, `SIGTERM arrived after the upstream had sent all ${PIECES} pieces`);
      expect(pieces === PIECES && finish === 'stop' && usage, `the client got ${pieces} of ${PIECES} pieces, finish_reason ${finish}`);
      const stopped = await stopping;
      const logs = await second.logs();
      expect(logs.includes('lobe-quota: SIGTERM, closing'), `no shutdown line in the logs:\n${logs}`);
      expect(stopped.exitCode === 0, `exit code ${stopped.exitCode} after ${stopped.seconds} s`);
      await second.remove();
      const third = container(3);
      await third.start();
      const ledger = await ledgerOf(adminClient(third.url, token));
      const expected = firstChat + usage.total_tokens;
      expect(ledger.requests === 2 && ledger.totalTokens === expected, `ledger: ${JSON.stringify(ledger)}, wanted 2 requests and ${expected} tokens`);
      expect(ledger.outcomes.ok === 2 && ledger.outcomes.interrupted === 0, `outcomes: ${JSON.stringify(ledger.outcomes)}`);
      await third.stop();
      return `SIGTERM with ${servedAtSigterm}/${PIECES} pieces sent; all ${pieces} delivered, exit 0 after ${stopped.seconds.toFixed(1)} s; after a restart the ledger has ${ledger.requests} requests, ${ledger.totalTokens} tokens, all "ok", none interrupted`;
    });
  } finally {
    for (const c of containers) await c.remove();
    await run('podman', ['volume', 'rm', '-f', volume], { allowFailure: true });
  }
}

async function checkCompose(route, fake) {
  section('compose.yaml (LobeHub and PostgreSQL images not reachable here: read, resolved and run in part)');
  const compose = loadCompose(repoRoot);
  for (const [name, fn] of composeChecks(compose, repoRoot)) await check(name, fn);

  const dryRun = await podmanComposeDryRun(repoRoot);
  if (dryRun === undefined) skip('podman-compose --dry-run up', 'podman-compose is not installed');
  else {
    await check('podman-compose --dry-run up: each service resolves to a podman run, every variable interpolated', async () => {
      const services = Object.keys(dryRun.commands).sort();
      expect(services.join() === 'lobe-quota,lobehub,postgres', `services resolved: ${services.join(', ') || 'none'}\n${dryRun.output.slice(-2000)}`);
      for (const [service, line] of Object.entries(dryRun.commands)) expect(!line.includes('${'), `${service}: uninterpolated variable in\n${line}`);
      const lobehub = envOfRunLine(dryRun.commands.lobehub);
      expect(lobehub.OPENAI_PROXY_URL === 'http://lobe-quota:3400/v1', `lobehub: OPENAI_PROXY_URL=${lobehub.OPENAI_PROXY_URL}`);
      expect(dryRun.commands['lobe-quota'].includes('--network-alias lobe-quota'), 'lobe-quota is not reachable by its name');
      const quota = envOfRunLine(dryRun.commands['lobe-quota']);
      expect(quota.DATABASE_URL?.endsWith('@postgres:5432/lobe_quota'), `lobe-quota: DATABASE_URL=${quota.DATABASE_URL}`);
      return `${services.join(', ')}`;
    });
  }

  const pgReady = await run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432'], { allowFailure: true }).catch(() => ({ code: 1 }));
  if (pgReady.code !== 0) {
    skip("lobe-quota's compose service on PostgreSQL", 'no PostgreSQL on 127.0.0.1:5432');
    return;
  }
  // The compose file's init script, as PostgreSQL's image runs it, with names of this run's own.
  const name = `lq_image_${RUN_ID}`;
  const password = randomBytes(8).toString('hex');
  const pgEnv = { ...process.env, PGHOST: '127.0.0.1', PGPORT: '5432', POSTGRES_USER: 'postgres', POSTGRES_DB: 'postgres', LOBE_QUOTA_DB_USER: name, LOBE_QUOTA_DB_NAME: name, LOBE_QUOTA_DB_PASSWORD: password };
  const volume = `lq-image-test-${RUN_ID}-pg`;
  let c;
  try {
    await check("lobe-quota's compose service on PostgreSQL (its DATABASE_URL, the init script's database, native-providers.json)", async () => {
      await run('sh', [path.join(repoRoot, 'deploy', 'docker', 'postgres-init.sh')], { env: pgEnv });
      const vars = { ...compose.envExample, LOBE_QUOTA_DB_PASSWORD: password, LOBE_QUOTA_CONFIG: '/config/native-providers.json', ANTHROPIC_API_KEY: 'sk-ant-fake', GEMINI_API_KEY: 'AIza-fake' };
      const env = serviceEnv(compose, 'lobe-quota', vars);
      // Only what differs outside compose's network: the database's host (and this run's names),
      // the upstream (the fake), and the port (the host's network is shared).
      env.DATABASE_URL = env.DATABASE_URL.replace('lobe_quota:', `${name}:`).replace('@postgres:5432/lobe_quota', `@127.0.0.1:5432/${name}`);
      Object.assign(env, { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: UPSTREAM_KEY });
      const configMount = compose.file.services['lobe-quota'].volumes.find((v) => v.split(':')[1] === '/config').split(':');
      await run('podman', ['volume', 'create', volume]);
      c = new Container({ route, image: IMAGE, name: volume, volume, port: await freePort(), env, mounts: [`${path.resolve(repoRoot, configMount[0])}:/config:${configMount[2] ?? 'ro'}`] });
      const banner = await c.start();
      expect(banner.includes(`PostgreSQL: 127.0.0.1:5432/${name}`), `not on PostgreSQL:\n${banner}`);
      expect(!/Warning: the upstream/.test(banner), `an upstream without a key:\n${banner}`);
      const token = adminTokenIn(banner);
      expect(token, `no admin token:\n${banner}`);
      const health = await (await fetch(`${c.url}/health`)).json();
      expect(health.ok === true && health.store === 'postgres', `/health: ${JSON.stringify(health)}`);
      const api = adminClient(c.url, token);
      const key = await aliceWithBudget(api, 50_000);
      const client = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: key, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello, PostgreSQL' }] });
      const ledger = await ledgerOf(api);
      expect(ledger.requests === 1 && ledger.totalTokens === completion.usage.total_tokens, `ledger: ${JSON.stringify(ledger)}`);
      const stopped = await c.stop();
      expect(stopped.exitCode === 0, `exit code ${stopped.exitCode}`);
      return `banner "${banner.split('\n')[0]}"; /health ${JSON.stringify(health)}; ${ledger.totalTokens} tokens in the ledger; exit 0`;
    });
  } finally {
    await c?.remove();
    await run('podman', ['volume', 'rm', '-f', volume], { allowFailure: true });
    await run('psql', ['-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', 'postgres', '-c', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, '-c', `DROP ROLE IF EXISTS ${name}`], {
      env: pgEnv,
      allowFailure: true,
    });
  }
}

async function main() {
  const started = Date.now();
  console.log(`npm run test:image: the Dockerfile and compose.yaml with podman (run ${RUN_ID})`);
  expect(process.getuid?.() === 0, 'run as root: debootstrap, chroot and rootful podman need it');
  for (const tool of ['podman', 'debootstrap']) expect(await installed(tool), `${tool} is not installed (apt-get install -y podman debootstrap runc uidmap)`);
  mkdirSync(workDir, { recursive: true });
  let fake;
  try {
    await buildImage();
    section('How containers run here');
    const route = await findRunRoute(IMAGE);
    for (const refusal of route.refusals) note(`refused: ${refusal}`);
    note(`using: ${route.name} --network host`);
    fake = await startFakeUpstream();
    note(`fake OpenAI upstream on ${fake.baseUrl}`);
    await runImage(route, fake);
    await checkCompose(route, fake);
  } catch (error) {
    if (!(error instanceof StopRun)) {
      results.failed += 1;
      console.log(`  FAIL  ${error.message}`);
    } else console.log('  (stopped: the checks after this one need it)');
  } finally {
    await fake?.close();
  }
  console.log(`\ntest:image took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`${results.passed} passed, ${results.failed} failed${results.skipped ? `, ${results.skipped} skipped` : ''}`);
  process.exitCode = results.failed > 0 ? 1 : 0;
}

await main();
