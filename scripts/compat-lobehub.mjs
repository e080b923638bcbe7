// `npm run compat:lobehub`: LobeChat's own code against a running lobe-quota.
//
// Downloads LobeHub 2.x and LobeChat 1.x from npm (their tarballs carry the monorepo's source),
// bundles the pieces that talk to lobe-quota (scripts/compat-lobehub/harness-*.mjs), starts
// lobe-quota as `npm start` does in front of the fake OpenAI, Anthropic and Gemini upstreams the
// tests use, and checks:
//   1. chat completions streams (2.x, 1.x): the text arrives; lobe-quota charged the upstream's usage;
//   2. Responses API stream (2.x): charged exactly;
//   3. a spent budget: the user sees our message (Chat Completions; Responses with refusalStyle "answer");
//   4. MCP (2.x): tools listed, check_quota called, its text and image blocks through LobeHub's processing;
//   5. the plugin by URL (1.x): manifest loaded and validated, checkQuota through the plugin gateway;
//   6. LobeHub's New API provider (2.x) at lobe-quota's base URL: a Claude, a Gemini and a GPT model
//      each streamed in its own API, charged exactly to the user whose key it was; the model list
//      shows our /api/pricing prices.
// Not part of `npm test`: it needs the npm registry and about 450 MB of disk under .compat/.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format } from 'node:util';
import * as esbuild from 'esbuild';
import { bundleHarness } from './compat-lobehub/bundle.mjs';
import { adminClient, startLobeQuota } from './compat-lobehub/lobe-quota.mjs';
import { installDeps, prepareSource } from './compat-lobehub/lobehub-source.mjs';
import { startRecorder } from './compat-lobehub/recorder.mjs';
import { TARGETS } from './compat-lobehub/targets.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(repoRoot, '.compat');
const harnessDir = path.join(repoRoot, 'scripts', 'compat-lobehub');
const buildDir = path.join(cacheDir, 'build');

const MODEL = 'gpt-4o-mini';
/**
 * What the New API checks send. LobeHub's router sends a model natively only when its exact id is
 * in LobeHub's own model list (model-bank): these two are, so Claude goes to the Anthropic SDK and
 * Gemini to Google's; every other model goes to the OpenAI SDK (Responses API for gpt-N when the
 * provider's "Use Responses API" switch is on).
 */
const NEWAPI = { claude: 'claude-sonnet-4-5-20250929', gemini: 'gemini-2.5-flash', gpt: 'gpt-5-mini' };
/** The list prices lobe-quota ships for them (Anthropic's, Google's and OpenAI's pages), dollars per 1M tokens. */
const LIST_PRICES = {
  [NEWAPI.claude]: { input: 3, cacheWrite: 3.75, cachedInput: 0.3, output: 15 },
  [NEWAPI.gemini]: { input: 0.3, cachedInput: 0.03, output: 2.5 },
  [NEWAPI.gpt]: { input: 0.25, cachedInput: 0.025, output: 2 },
};
/** The upstreams' own keys: the fakes of Anthropic and Gemini refuse any other. */
const UPSTREAM_KEYS = { openai: 'sk-fake-upstream', anthropic: 'sk-ant-fake-upstream', gemini: 'AIza-fake-upstream' };
/** Node's own fetch: the harness swaps the global one for a browser's while LobeChat's browser code runs. */
const nodeFetch = globalThis.fetch;
/** The price set in the config, so the cost charged can be checked too (dollars per 1M tokens). */
const PRICE = { input: 0.15, cachedInput: 0.075, output: 0.6 };
const ADMIN_TOKEN = `compat-${randomBytes(12).toString('hex')}`;
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const log = (line) => console.log(`  … ${line}`);

// ---------------------------------------------------------------------------------------------
// The report

/** @type {{id: string, title: string, required: boolean, status: 'pass'|'fail'|'info', lines: string[]}[]} */
const checks = [];

function record(id, title, { required = true }, body) {
  const check = { id, title, required, status: 'pass', lines: [] };
  checks.push(check);
  const note = (line) => check.lines.push(line);
  const expect = (ok, line) => {
    note(`${ok ? '✓' : '✗'} ${line}`);
    if (!ok && check.status === 'pass') check.status = 'fail';
    return ok;
  };
  // LobeChat's server code logs (its route's console.warn of the error, the gateway's
  // console.info): kept with the check, one line each, instead of interleaved with the report.
  const methods = ['log', 'info', 'warn', 'error', 'debug'];
  const saved = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args) => note(`LobeChat logged (console.${m}): ${format(...args).replace(/\s+/g, ' ').slice(0, 240)}`);
  return Promise.resolve()
    .then(() => body({ note, expect, info: () => (check.status = 'info') }))
    .catch((error) => {
      check.status = 'fail';
      note(`✗ ${error instanceof Error ? error.stack?.split('\n').slice(0, 4).join('\n      ') : String(error)}`);
    })
    .finally(() => methods.forEach((m, i) => (console[m] = saved[i])));
}

function printReport(extra) {
  const mark = { pass: '✓', fail: '✗', info: 'ℹ' };
  console.log('\n══ compat:lobehub report ══════════════════════════════════════════════════════════');
  for (const check of checks) {
    console.log(`\n${mark[check.status]} ${check.id} ${check.title}${check.required ? '' : '  (evidence, not required)'}`);
    for (const line of check.lines) console.log(`    ${line.replaceAll('\n', '\n      ')}`);
  }
  console.log('');
  for (const line of extra) console.log(line);
  const failed = checks.filter((c) => c.required && c.status === 'fail');
  console.log(`\n${checks.filter((c) => c.status === 'pass').length} passed, ${failed.length} failed${failed.length ? ` (${failed.map((c) => c.id).join(', ')})` : ''}; ${elapsed()}`);
  return failed.length;
}

// ---------------------------------------------------------------------------------------------
// LobeChat: sources, dependencies, bundles

function dirBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(full);
    else if (entry.isFile()) total += statSync(full).size;
  }
  return total;
}
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function buildTarget(target) {
  const source = await prepareSource(cacheDir, target.spec, log);
  const depsDir = path.join(cacheDir, 'deps', source.slug);
  mkdirSync(depsDir, { recursive: true });
  const options = {
    root: source.root,
    entryPoints: [path.join(harnessDir, target.harness)],
    harnessDir,
    workspace: source.workspace,
    depsDir,
    stubFiles: Object.fromEntries(Object.entries(target.stubFiles).map(([file, stub]) => [file, path.join(harnessDir, stub)])),
    stubPackages: Object.fromEntries(Object.entries(target.stubPackages).map(([name, stub]) => [name, path.join(harnessDir, stub)])),
    unreached: target.unreached,
  };
  // A dry run lists every third-party package the bundle reaches that is not installed yet; once
  // they are, the next dry run must find none.
  for (let round = 0; ; round++) {
    const { missing } = await bundleHarness(options);
    if (missing.size === 0) break;
    if (round > 0) throw new Error(`still missing after installing: ${[...missing.keys()].join(', ')}`);
    await installDeps(source.root, depsDir, missing, log);
  }
  const outfile = path.join(buildDir, `${target.id}.mjs`);
  await bundleHarness({ ...options, outfile });
  return { outfile, depsDir, tarballBytes: source.tarballBytes, depsBytes: dirBytes(depsDir), bundleBytes: statSync(outfile).size };
}

const KEY_PACKAGES = ['openai', '@anthropic-ai/sdk', '@google/genai', '@modelcontextprotocol/sdk', '@lobehub/chat-plugin-sdk', '@lobehub/chat-plugins-gateway', 'zod'];

function installedVersions(depsDir) {
  return KEY_PACKAGES.flatMap((name) => {
    const file = path.join(depsDir, 'node_modules', name, 'package.json');
    return existsSync(file) ? [`${name} ${JSON.parse(readFileSync(file, 'utf8')).version}`] : [];
  });
}

/** server/testing/fake-{openai,anthropic,gemini}.ts (the tests' upstreams; not part of the dist/ build), by name. */
async function buildFakes() {
  const names = ['fake-openai', 'fake-anthropic', 'fake-gemini'];
  await esbuild.build({
    entryPoints: names.map((name) => path.join(repoRoot, 'server', 'testing', `${name}.ts`)),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: buildDir,
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  return Object.fromEntries(names.map((name) => [name, pathToFileURL(path.join(buildDir, `${name}.mjs`)).href]));
}

// ---------------------------------------------------------------------------------------------
// lobe-quota

/**
 * Claude and Gemini each on an upstream of its own API; OpenAI (OPENAI_BASE_URL) serves the rest,
 * after them: the layout LobeHub's New API provider needs behind one base URL.
 */
function configFor(fakes, extraProxy = {}) {
  return {
    upstreams: [
      { name: 'anthropic', api: 'anthropic', baseUrl: fakes.anthropic.baseUrl, apiKeyEnv: 'ANTHROPIC_API_KEY', models: ['claude-*'] },
      { name: 'google', api: 'gemini', baseUrl: fakes.gemini.baseUrl, apiKeyEnv: 'GEMINI_API_KEY', models: ['gemini-*'] },
    ],
    prices: { [MODEL]: PRICE },
    proxy: extraProxy,
    defaultBudgets: [{ scope: 'user', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1_000_000 }],
  };
}

/** A project, a user, and one key per check so `/admin/usage?groupBy=key` separates them. */
async function seed(admin, keyNames) {
  await admin('POST', '/admin/projects', { id: 'compat', name: 'Compatibility run' });
  await admin('POST', '/admin/users', { id: 'alice', name: 'Alice', projectId: 'compat' });
  const keys = {};
  for (const name of keyNames) keys[name] = await admin('POST', '/admin/keys', { userId: 'alice', name });
  return keys;
}

/**
 * Gives a key a budget of 40 tokens and spends it: one answer whose upstream usage says 41 tokens
 * (more than was held for it: upstream numbers are what is charged), then the next request is
 * refused ("You exceeded …"). Returns that refusal as a direct client gets it.
 */
async function spendKeyBudget(baseUrl, admin, fake, key) {
  await admin('PUT', '/admin/budgets', { scope: `key:${key.id}`, window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 40 });
  const ask = () =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Spend my budget, please.' }] }),
    });
  await withUpstreamReply(fake, { kind: 'reply', outputTokens: 1, usage: { prompt_tokens: 40, completion_tokens: 1 } }, async () => (await ask()).arrayBuffer());
  const upstreamCalls = fake.requests.length;
  const response = await ask();
  const body = await response.json();
  if (fake.requests.length !== upstreamCalls) throw new Error(`a spent budget let a request through: ${JSON.stringify(body).slice(0, 200)}`);
  return { status: response.status, body };
}

/** What lobe-quota answers a direct client of a spent key right now. */
async function probeRefusal(baseUrl, key) {
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello?' }] }),
  });
  return { status: response.status, body: await response.json() };
}

async function usageOfKey(admin, keyId) {
  const report = await admin('GET', '/admin/usage?groupBy=key');
  return report.rows.find((row) => row.key === keyId) ?? { requests: 0, inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, totalTokens: 0, costUsd: 0 };
}

const expectedCostUsd = (u) => ((u.inputTokens - u.cachedTokens) * PRICE.input + u.cachedTokens * PRICE.cachedInput + u.outputTokens * PRICE.output) / 1e6;

/** Dollars for a usage at prices per 1M tokens: the prompt (writes and reads included) split into its classes. */
const costAt = (price, u) =>
  ((u.inputTokens - u.cachedTokens - u.cacheWriteTokens) * price.input + u.cacheWriteTokens * (price.cacheWrite ?? price.input) + u.cachedTokens * price.cachedInput + u.outputTokens * price.output) / 1e6;

// ---------------------------------------------------------------------------------------------
// What LobeChat sends, from the recorder

const maskKey = (value) => String(value).replace(/lq-[A-Za-z0-9_-]+/g, (k) => `${k.slice(0, 7)}…`);

function describeRequest(r) {
  const interesting = Object.entries(r.headers)
    .filter(([name]) => !['host', 'content-length', 'connection'].includes(name))
    .map(([name, value]) => `${name}: ${maskKey(value)}`);
  let body = r.body;
  try {
    const parsed = JSON.parse(r.body);
    if (Array.isArray(parsed.messages)) parsed.messages = `[${parsed.messages.length} messages]`;
    if (Array.isArray(parsed.input)) parsed.input = `[${parsed.input.length} input items]`;
    if (Array.isArray(parsed.contents)) parsed.contents = `[${parsed.contents.length} contents]`;
    body = JSON.stringify(parsed);
  } catch {}
  return [`${r.method} ${r.path} → ${r.status}`, `  headers: ${interesting.join(' | ')}`, ...(r.body ? [`  body: ${body}`] : [])];
}

// ---------------------------------------------------------------------------------------------
// The checks

const CHAT_PIECES = [' Hello', ' from', ' the', ' fake', ' upstream', '.'];
const messages = [{ role: 'user', content: 'Say hello.' }];

async function chargedExactly({ expect, note }, admin, key, upstream) {
  const u = await usageOfKey(admin, key.id);
  note(`upstream reported: input ${upstream.prompt_tokens} (cached ${upstream.cached_tokens}), output ${upstream.completion_tokens}`);
  note(`lobe-quota charged: ${u.requests} request(s), input ${u.inputTokens} (cached ${u.cachedTokens}), output ${u.outputTokens}, reasoning ${u.reasoningTokens}, $${u.costUsd.toFixed(6)}`);
  expect(
    u.requests === 1 && u.inputTokens === upstream.prompt_tokens && u.cachedTokens === upstream.cached_tokens && u.outputTokens === upstream.completion_tokens,
    'charged exactly the upstream usage',
  );
  const cost = expectedCostUsd(u);
  expect(Math.abs(u.costUsd - cost) <= 1e-6, `cost = tokens × configured price ($${cost.toFixed(6)})`);
  return u;
}

/** The fake upstream answers this way while `run` runs (and the way it did before, after). */
async function withUpstreamReply(fake, behaviour, run) {
  const before = fake.defaultBehaviour;
  fake.defaultBehaviour = behaviour;
  try {
    return await run();
  } finally {
    fake.defaultBehaviour = before;
  }
}

async function checkChatStream(ctx, { lobe, label, admin, key, fake, recorder, apiMode, upstreamUsage }) {
  const { expect, note } = ctx;
  const mark = recorder.records.length;
  const out = await withUpstreamReply(fake, { kind: 'reply', text: CHAT_PIECES, usage: upstreamUsage }, () =>
    lobe.chat({ apiKey: key.key, baseURL: `${recorder.url}/v1`, apiMode, model: MODEL, messages }),
  );
  note(`${label} route answered HTTP ${out.status}; the user sees: ${JSON.stringify(out.text)}`);
  if (out.error) note(`error shown: ${JSON.stringify(out.userSees?.title)}`);
  expect(out.text.trim() === CHAT_PIECES.join('').trim(), 'the streamed text arrives whole');
  if (out.usage) note(`LobeChat's own usage record: ${JSON.stringify(out.usage)}`);
  const sent = recorder.since(mark, '/v1');
  for (const r of sent) for (const line of describeRequest(r)) note(`LobeChat → lobe-quota: ${line}`);
  const forwarded = fake.requests.at(-1);
  if (forwarded) note(`lobe-quota → upstream: ${forwarded.method} ${forwarded.path} body keys ${Object.keys(forwarded.body ?? {}).sort().join(',')}${forwarded.body?.stream_options ? ` stream_options ${JSON.stringify(forwarded.body.stream_options)}` : ''}`);
  const charged = await chargedExactly(ctx, admin, key, { prompt_tokens: upstreamUsage.prompt_tokens, cached_tokens: upstreamUsage.cached_tokens ?? 0, completion_tokens: CHAT_PIECES.length });
  // LobeChat asked for usage; it shows it under the message from the usage lobe-quota relays.
  expect(
    out.usage?.totalInputTokens === charged.inputTokens && out.usage?.totalOutputTokens === charged.outputTokens,
    `LobeChat's own usage record agrees with the charge (${out.usage?.totalInputTokens} in, ${out.usage?.totalOutputTokens} out)`,
  );
}

function showUserSees(note, out) {
  if (out.userSees) {
    note(`LobeChat's route answered HTTP ${out.status}; error type ${JSON.stringify(out.userSees.type)}`);
    note(`the user sees, title: ${JSON.stringify(out.userSees.title)}`);
    if (out.userSees.details) note(`and below it (expanded JSON):\n${out.userSees.details}`);
  } else {
    note(`LobeChat's route answered HTTP ${out.status}; the user sees the assistant answer: ${JSON.stringify(out.text)}`);
  }
}

const userText = (out) => (out.userSees ? `${out.userSees.title}\n${out.userSees.details ?? ''}` : out.text);

// ---------------------------------------------------------------------------------------------
// LobeHub's New API provider

/** Every user's usage this month, by user id. */
async function usageByUser(admin) {
  const report = await admin('GET', '/admin/usage?groupBy=user');
  return new Map(report.rows.map((row) => [row.user, row]));
}

/** The output limit a request body names, in whichever API's field. */
const limitOf = (body) => {
  const b = body ?? {};
  for (const [field, value] of [['max_tokens', b.max_tokens], ['max_output_tokens', b.max_output_tokens], ['max_completion_tokens', b.max_completion_tokens], ['generationConfig.maxOutputTokens', b.generationConfig?.maxOutputTokens]]) {
    if (value !== undefined) return `${field} ${value}`;
  }
  return 'no output limit';
};

/**
 * One chat turn on LobeHub's New API provider (`/webapi/chat/newapi`, the user's key and base
 * URL in its key vault): the text arrives; LobeHub sent one request, in the API its router picks
 * for the model (`wire`), which lobe-quota forwarded in that API to that API's upstream with the
 * upstream's key; the ledger charged the key's user exactly the usage the upstream reported, at
 * `price`, and nobody else anything.
 */
async function checkNewApiChat(ctx, { lobe, admin, recorder, baseURL, key, userId, model, apiMode, fake, upstreamName, upstreamKey, wire, wireName, reply, upstream, price, priceName }) {
  const { expect, note } = ctx;
  const mark = recorder.records.length;
  const seen = fake.requests.length;
  const before = await usageByUser(admin);
  const out = await withUpstreamReply(fake, reply, () => lobe.chat({ provider: 'newapi', apiKey: key.key, baseURL, apiMode, model, messages }));
  note(`LobeHub's route answered HTTP ${out.status}; the user sees: ${JSON.stringify(out.text)}`);
  if (out.error) note(`error shown: ${JSON.stringify(out.userSees?.title)}${out.userSees?.details ? `\n${out.userSees.details}` : ''}`);
  expect(out.text.trim() === reply.text.join('').trim(), 'the streamed text arrives whole');

  const sent = recorder.since(mark);
  for (const r of sent) for (const line of describeRequest(r)) note(`LobeHub → lobe-quota: ${line}`);
  expect(sent.length === 1 && wire.test(sent[0].path), `LobeHub sent one request, in ${wireName}: ${sent.map((r) => `${r.method} ${r.path}`).join(', ') || 'none'}`);
  const forwarded = fake.requests.slice(seen);
  for (const f of forwarded) note(`lobe-quota → ${upstreamName}: ${f.method} ${f.url}, key ${maskKey(f.apiKey)}, ${limitOf(f.body)} (LobeHub asked ${limitOf(safeJson(sent[0]?.body))})`);
  expect(forwarded.length === 1 && wire.test(forwarded[0].url), `lobe-quota forwarded it in the same API to the ${upstreamName} upstream`);
  expect(
    forwarded.length > 0 && forwarded.every((f) => f.apiKey === upstreamKey && !JSON.stringify(f.headers).includes(key.key)),
    "with the upstream's own key; the user's key stayed with lobe-quota",
  );

  const after = await usageByUser(admin);
  const row = (await admin('GET', '/admin/usage?groupBy=user,key')).rows.find((r) => r.key === key.id);
  const u = { inputTokens: 0, cachedTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0, ...upstream };
  note(`${upstreamName} reported: prompt ${u.inputTokens} (cache reads ${u.cachedTokens}, cache writes ${u.cacheWriteTokens}), output ${u.outputTokens} (reasoning ${u.reasoningTokens})`);
  if (!row) {
    expect(false, `nothing charged to key ${key.id}`);
    return;
  }
  note(`lobe-quota charged ${row.user}: ${row.requests} request(s), input ${row.inputTokens} (cached ${row.cachedTokens}), output ${row.outputTokens}, reasoning ${row.reasoningTokens}, $${row.costUsd.toFixed(6)}`);
  if (out.usage) note(`LobeHub's own usage record: ${JSON.stringify(out.usage)}`);
  expect(row.user === userId, `charged to ${userId}, whose key LobeHub sent`);
  expect(
    row.requests === 1 && row.inputTokens === u.inputTokens && row.cachedTokens === u.cachedTokens && row.outputTokens === u.outputTokens && row.reasoningTokens === u.reasoningTokens,
    'exactly the usage the upstream reported',
  );
  const cost = costAt(price, u);
  expect(Math.abs(row.costUsd - cost) <= 1e-6, `cost = each class × ${priceName} ($${cost.toFixed(6)})`);
  const others = [...after].filter(([user, r]) => user !== userId && JSON.stringify(r) !== JSON.stringify(before.get(user)));
  expect(others.length === 0, `no other user was charged${others.length ? ` (${others.map(([user]) => user).join(', ')} were)` : ''}`);
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A model card's prices as LobeHub shows them: dollars per 1M tokens, by unit name. */
const shownPrices = (card) => Object.fromEntries((card?.pricing?.units ?? []).filter((u) => u.unit === 'millionTokens' && u.strategy === 'fixed').map((u) => [u.name, u.rate]));

async function main() {
  console.log(`compat:lobehub — ${TARGETS.map((t) => t.spec).join(' and ')} against lobe-quota`);
  mkdirSync(buildDir, { recursive: true });

  const built = {};
  for (const target of TARGETS) {
    log(`${target.label}: source and dependencies`);
    built[target.id] = await buildTarget(target);
  }
  const fakeModules = await buildFakes();
  log(`bundled (${elapsed()}); building lobe-quota`);
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'ensure-built.js')], { stdio: 'inherit' });

  const cleanups = [];
  const stopAll = async () => {
    while (cleanups.length > 0) await cleanups.pop()().catch(() => {});
  };
  const onSignal = (signal) => {
    console.error(`\ncompat:lobehub: ${signal}, stopping`);
    void stopAll().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const extra = [];
  try {
    const { startFakeOpenAI } = await import(fakeModules['fake-openai']);
    const { startFakeAnthropic } = await import(fakeModules['fake-anthropic']);
    const { startFakeGemini } = await import(fakeModules['fake-gemini']);
    const fake = await startFakeOpenAI({ models: [MODEL, NEWAPI.gpt] });
    cleanups.push(() => fake.close());
    // Their default model lists hold NEWAPI.claude and NEWAPI.gemini.
    const fakes = { anthropic: await startFakeAnthropic({ apiKey: UPSTREAM_KEYS.anthropic }), gemini: await startFakeGemini({ apiKey: UPSTREAM_KEYS.gemini }) };
    cleanups.push(() => fakes.anthropic.close(), () => fakes.gemini.close());
    const workDir = mkdtempSync(path.join(tmpdir(), 'lobe-quota-compat-'));
    cleanups.push(async () => rmSync(workDir, { recursive: true, force: true }));
    const env = { ADMIN_TOKEN, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: UPSTREAM_KEYS.openai, ANTHROPIC_API_KEY: UPSTREAM_KEYS.anthropic, GEMINI_API_KEY: UPSTREAM_KEYS.gemini };

    const service = await startLobeQuota({ repoRoot, dir: path.join(workDir, 'default'), config: configFor(fakes), env });
    cleanups.push(service.stop);
    if (service.failed) throw new Error(`lobe-quota did not start: ${service.failed}`);
    const answerStyle = await startLobeQuota({ repoRoot, dir: path.join(workDir, 'answer'), config: configFor(fakes, { refusalStyle: 'answer' }), env });
    cleanups.push(answerStyle.stop);
    const recorder = await startRecorder(service.url);
    cleanups.push(recorder.close);
    log(`lobe-quota on ${service.url} (relay ${recorder.url}); fake upstreams: OpenAI ${fake.baseUrl}, Anthropic ${fakes.anthropic.baseUrl}, Gemini ${fakes.gemini.baseUrl}`);

    const admin = adminClient(service.url, ADMIN_TOKEN);
    const keys = await seed(admin, ['chat-2x', 'responses-2x', 'chat-1x', 'spent', 'mcp', 'plugin']);
    // Two more people for the New API checks, so that "charged to the right user" means something.
    const newApiKeys = {};
    for (const [user, name, keyNames] of [
      ['carol', 'Carol', ['newapi-claude', 'newapi-gpt-responses', 'newapi-models']],
      ['dave', 'Dave', ['newapi-gemini', 'newapi-gpt-chat']],
    ]) {
      await admin('POST', '/admin/users', { id: user, name, projectId: 'compat' });
      for (const keyName of keyNames) newApiKeys[keyName] = await admin('POST', '/admin/keys', { userId: user, name: keyName });
    }
    const refusal = await spendKeyBudget(service.url, admin, fake, keys.spent);

    const lobe2 = await import(pathToFileURL(built['2.x'].outfile).href);
    const lobe1 = await import(pathToFileURL(built['1.x'].outfile).href);

    // 1. Chat Completions streams ------------------------------------------------------------
    await record('1a', 'LobeHub 2.x: OpenAI runtime, Chat Completions stream ("Use Responses API" off)', {}, (ctx) =>
      checkChatStream(ctx, { lobe: lobe2, label: "LobeHub's", admin, key: keys['chat-2x'], fake, recorder, apiMode: 'chatCompletion', upstreamUsage: { prompt_tokens: 1234, cached_tokens: 1024 } }),
    );
    await record('1b', 'LobeChat 1.x: OpenAI runtime, Chat Completions stream (its default)', {}, (ctx) =>
      checkChatStream(ctx, { lobe: lobe1, label: "LobeChat's", admin, key: keys['chat-1x'], fake, recorder, apiMode: undefined, upstreamUsage: { prompt_tokens: 987, cached_tokens: 0 } }),
    );

    await record('1c', "LobeHub 2.x server with one shared service key: LobeHub's own user id pays, created on first sight, then linked to a person", {}, async ({ expect, note }) => {
      const serviceKey = await admin('POST', '/admin/keys', { userId: 'alice', name: 'lobehub-server', service: true });
      const usageOfUser = async (id) => (await admin('GET', '/admin/usage?groupBy=user')).rows.find((row) => row.user === id) ?? { requests: 0, inputTokens: 0, outputTokens: 0 };
      const ask = () =>
        withUpstreamReply(fake, { kind: 'reply', text: CHAT_PIECES, usage: { prompt_tokens: 500 } }, () =>
          lobe2.chat({ apiKey: serviceKey.key, baseURL: `${recorder.url}/v1`, apiMode: 'responses', model: MODEL, messages }),
        );
      const mark = recorder.records.length;
      const first = await ask();
      const lobeUserId = JSON.parse(recorder.since(mark, '/v1')[0]?.body ?? '{}').user;
      note(`LobeHub sent "user": ${JSON.stringify(lobeUserId)} with the service key`);
      expect(first.text.trim() === CHAT_PIECES.join('').trim(), 'the answer arrives (no unknown_user refusal)');
      const created = (await admin('GET', '/admin/users')).users?.find((u) => u.id === lobeUserId);
      expect(created !== undefined, `lobe-quota created the user ${lobeUserId} on first sight`);
      const own = await usageOfUser(lobeUserId);
      expect(own.requests === 1 && own.inputTokens === 500 && own.outputTokens === CHAT_PIECES.length, `it was charged: ${own.requests} request, ${own.inputTokens} in / ${own.outputTokens} out`);

      await admin('POST', '/admin/users', { id: 'bob', name: 'Bob', projectId: 'compat' });
      await admin('POST', '/admin/users/bob/external-ids', { externalId: lobeUserId });
      await ask();
      const bob = await usageOfUser('bob');
      expect(bob.requests === 1 && (await usageOfUser(lobeUserId)).requests === 1, 'once an admin links the id to Bob, the next chat is charged to Bob');
    });

    // 2. Responses API stream ----------------------------------------------------------------
    await record('2', 'LobeHub 2.x: OpenAI runtime, Responses API stream (its default for OpenAI)', {}, (ctx) =>
      checkChatStream(ctx, { lobe: lobe2, label: "LobeHub's", admin, key: keys['responses-2x'], fake, recorder, apiMode: 'responses', upstreamUsage: { prompt_tokens: 2345, cached_tokens: 128 } }),
    );

    // 3. Refusals ----------------------------------------------------------------------------
    const ours = refusal.body.error?.message;
    /** The refusal lobe-quota sent LobeChat for its request since `mark`. */
    const refusalSentSince = (mark) => {
      const answer = recorder.since(mark, '/v1').find((r) => r.status === 429);
      try {
        return JSON.parse(answer.responseBody).error.message;
      } catch {
        return null;
      }
    };
    for (const [id, title, lobe, apiMode] of [
      ['3a', 'LobeHub 2.x: spent budget on Chat Completions — the user sees our message', lobe2, 'chatCompletion'],
      ['3b', 'LobeChat 1.x: spent budget on Chat Completions — the user sees our message', lobe1, undefined],
    ]) {
      await record(id, title, {}, async ({ expect, note }) => {
        const mark = recorder.records.length;
        const out = await lobe.chat({ apiKey: keys.spent.key, baseURL: `${recorder.url}/v1`, apiMode, model: MODEL, messages });
        const sent = refusalSentSince(mark);
        const attempts = recorder.since(mark, '/v1').length;
        note(`lobe-quota answered LobeChat's request: 429 insufficient_quota ${JSON.stringify(sent)} (${attempts === 1 ? 'one request: the SDK did not retry' : `${attempts} requests: the SDK retried`})`);
        showUserSees(note, out);
        expect(out.userSees?.type === 'InsufficientQuota', `LobeChat classifies it as InsufficientQuota (got ${JSON.stringify(out.userSees?.type)})`);
        expect(sent !== null && sent === ours && userText(out).includes(sent), 'the user-visible text includes our message');
        note(`our message is in the title: ${out.userSees?.title.includes(ours) ?? false}; in the JSON below it: ${Boolean(out.userSees?.details?.includes(ours))}`);
      });
    }
    await record('3c', 'LobeHub 2.x: spent budget on the Responses API, default refusalStyle "error" — what the user sees', { required: false }, async ({ note, info }) => {
      info();
      const mark = recorder.records.length;
      const out = await lobe2.chat({ apiKey: keys.spent.key, baseURL: `${recorder.url}/v1`, apiMode: 'responses', model: MODEL, messages });
      note(`lobe-quota answered LobeHub's request: 429 insufficient_quota ${JSON.stringify(refusalSentSince(mark))}`);
      showUserSees(note, out);
      note(`our message is in the title: ${out.userSees ? out.userSees.title.includes(ours) : 'n/a'}; in the JSON below it: ${Boolean(out.userSees?.details?.includes(ours))}`);
    });
    await record('3d', 'LobeHub 2.x: spent budget on the Responses API with proxy.refusalStyle "answer" — our refusal is the answer', {}, async ({ expect, note }) => {
      if (answerStyle.failed) {
        const reason = /^.*refusalStyle.*$/m.exec(answerStyle.failed)?.[0].trim() ?? answerStyle.failed.split('\n').slice(0, 3).join(' ');
        expect(false, `this lobe-quota build does not accept proxy.refusalStyle: "answer" yet (${reason}) — pending the option`);
        return;
      }
      const answerAdmin = adminClient(answerStyle.url, ADMIN_TOKEN);
      const [spent] = Object.values(await seed(answerAdmin, ['spent-answer']));
      await spendKeyBudget(answerStyle.url, answerAdmin, fake, spent);
      const direct = await probeRefusal(answerStyle.url, spent);
      const refusalText = direct.body?.choices?.[0]?.message?.content ?? direct.body?.error?.message ?? '';
      note(`a direct Chat Completions request with the spent key → HTTP ${direct.status}: ${JSON.stringify(refusalText)}`);
      const out = await lobe2.chat({ apiKey: spent.key, baseURL: `${answerStyle.url}/v1`, apiMode: 'responses', model: MODEL, messages });
      showUserSees(note, out);
      expect(!out.error && out.status === 200, 'LobeHub shows an assistant answer, not an error');
      expect(refusalText !== '' && out.text.includes(refusalText), 'the answer is our refusal text');
    });

    // 4. MCP ----------------------------------------------------------------------------------
    await record('4', "LobeHub 2.x: MCP over streamable HTTP — check_quota through LobeHub's MCP service", {}, async ({ expect, note }) => {
      const mark = recorder.records.length;
      const out = await lobe2.mcp({ url: `${recorder.url}/mcp`, token: keys.mcp.key });
      const tools = out.manifest.api.map((api) => api.name);
      note(`tools listed: ${tools.join(', ')}`);
      expect(tools.includes('check_quota'), 'check_quota is listed');
      const blocks = out.result.state.content;
      note(`result blocks after processContentBlocks: ${blocks.map((b) => `${b.type}${b.mimeType ? `(${b.mimeType})` : ''}`).join(', ')}; success ${out.result.success}, isError ${Boolean(out.result.state.isError)}`);
      const text = blocks.find((b) => b.type === 'text');
      expect(Boolean(text?.text), 'a text block comes through (shown as Markdown)');
      if (text) note(`text block:\n${text.text}`);
      const quota = await (await fetch(`${service.url}/quota`, { headers: { authorization: `Bearer ${keys.mcp.key}` } })).json();
      if (out.result.state.structuredContent) expect(out.result.state.structuredContent.usage === quota.usage && out.result.state.structuredContent.limit === quota.limit, 'structuredContent matches /quota');
      const image = blocks.find((b) => b.type === 'image');
      const upload = out.uploads[0];
      const png = upload ? upload.bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) : false;
      if (image) note(`image block: ${image.mimeType}, uploaded ${upload?.bytes.length ?? 0} bytes to ${upload?.pathname} (file service stubbed), shown from ${image.data}`);
      expect(Boolean(image) && image.mimeType === 'image/png' && png, image ? 'an image block (image/png, PNG signature) comes through and is uploaded' : 'an image block comes through — none in this build yet (pending the MCP image block)');
      note(`what the model is given: ${JSON.stringify(out.result.content.slice(0, 300))}${out.result.content.length > 300 ? '…' : ''}`);
      const sent = recorder.since(mark, '/mcp');
      note(`LobeHub → lobe-quota: ${sent.length} requests: ${sent.map((r) => `${r.method} ${/"method":"([^"]+)"/.exec(r.body)?.[1] ?? ''} → ${r.status}`).join(', ')}`);
      for (const r of sent.filter((r) => /"(initialize|tools\/call)"/.test(r.body))) for (const line of describeRequest(r)) note(`LobeHub → lobe-quota: ${line}`);
    });

    // 5. Plugin by URL on 1.x -----------------------------------------------------------------
    await record('5', 'LobeChat 1.x: custom plugin by URL — manifest loaded and validated, checkQuota through the plugin gateway', {}, async ({ expect, note }) => {
      const origin = 'http://localhost:3210';
      const manifestUrl = `${recorder.url}/manifest.json`;
      let cors = null;
      // A browser on LobeChat's origin: cross-origin, so the answer must allow that origin.
      const browserFetch = async (input, init = {}) => {
        const response = await nodeFetch(input, { ...init, headers: { ...init.headers, origin } });
        cors = response.headers.get('access-control-allow-origin');
        if (cors !== '*' && cors !== origin) throw new TypeError('Failed to fetch (CORS)');
        return response;
      };
      const mark = recorder.records.length;
      const manifest = await lobe1.installPluginByUrl(manifestUrl, browserFetch).catch((error) => {
        throw new Error(`getToolManifest refused ${manifestUrl}: ${error.message}${error.cause ? ` (${JSON.stringify(error.cause).slice(0, 300)})` : ''}; Access-Control-Allow-Origin ${JSON.stringify(cors)}`);
      });
      const got = recorder.since(mark, '/manifest.json')[0];
      note(`GET /manifest.json → Access-Control-Allow-Origin ${JSON.stringify(cors)}, Content-Type ${JSON.stringify(got?.responseHeaders?.['content-type'])} (${got?.responseHeaders?.['content-type'] === 'application/json' ? 'parsed as JSON' : 'not exactly "application/json": getToolManifest parses it as YAML'})`);
      expect(manifest.identifier !== undefined, `getToolManifest accepted it (pluginManifestSchema): identifier ${manifest.identifier}, apis ${manifest.api.map((a) => a.name).join(', ')}`);
      const out = await lobe1.runPluginApi({ manifest, apiName: 'checkQuota', args: {}, settings: { apiKey: keys.plugin.key } });
      note(`gateway answered HTTP ${out.status}: ${out.text.slice(0, 200)}${out.text.length > 200 ? '…' : ''}`);
      const quota = await (await fetch(`${service.url}/quota`, { headers: { authorization: `Bearer ${keys.plugin.key}` } })).json();
      let answer = null;
      try {
        answer = JSON.parse(out.text);
      } catch {}
      expect(out.status === 200 && answer !== null, 'the tool message is JSON (so LobeChat draws the card iframe)');
      expect(
        answer !== null && ['usage', 'limit', 'percentage', 'remaining', 'status', 'nextReset'].every((f) => JSON.stringify(answer[f]) === JSON.stringify(quota[f])),
        `checkQuota answers the key holder's /quota (usage ${quota.usage} of ${quota.limit}, ${quota.percentage} %)`,
      );
      const call = recorder.since(mark, '/plugin').at(-1);
      if (call) for (const line of describeRequest(call)) note(`gateway → lobe-quota: ${line}`);
    });

    // 6. LobeHub's New API provider -----------------------------------------------------------
    // The base URL as New API's placeholder has it (no /v1): LobeHub strips a trailing /v1 itself.
    const newApi = { lobe: lobe2, admin, recorder, baseURL: recorder.url };
    const piecesReply = { kind: 'reply', text: CHAT_PIECES };
    await record('6a', `LobeHub 2.x: New API provider, ${NEWAPI.claude} — the Anthropic SDK to lobe-quota's /v1/messages, charged to Carol`, {}, (ctx) =>
      checkNewApiChat(ctx, {
        ...newApi,
        key: newApiKeys['newapi-claude'],
        userId: 'carol',
        model: NEWAPI.claude,
        apiMode: 'chatCompletion',
        fake: fakes.anthropic,
        upstreamName: 'Anthropic',
        upstreamKey: UPSTREAM_KEYS.anthropic,
        wire: /^\/v1\/messages$/,
        wireName: "Anthropic's Messages API",
        // A cache hit and a 5-minute cache write beside the uncached input: each class has its price.
        reply: { ...piecesReply, usage: { input_tokens: 321, cache_read_input_tokens: 2048, cache_creation_5m: 512 } },
        upstream: { inputTokens: 321 + 2048 + 512, cachedTokens: 2048, cacheWriteTokens: 512, outputTokens: CHAT_PIECES.length },
        price: LIST_PRICES[NEWAPI.claude],
        priceName: "Claude Sonnet 4.5's shipped price (cache write 1.25×, read 0.1× input)",
      }),
    );
    await record('6b', `LobeHub 2.x: New API provider, ${NEWAPI.gemini} — @google/genai to lobe-quota's :streamGenerateContent, charged to Dave`, {}, (ctx) =>
      checkNewApiChat(ctx, {
        ...newApi,
        key: newApiKeys['newapi-gemini'],
        userId: 'dave',
        model: NEWAPI.gemini,
        apiMode: 'chatCompletion',
        fake: fakes.gemini,
        upstreamName: 'Gemini',
        upstreamKey: UPSTREAM_KEYS.gemini,
        wire: new RegExp(`^/v1beta/models/${NEWAPI.gemini.replaceAll('.', '\\.')}:streamGenerateContent\\?alt=sse$`),
        wireName: "Gemini's streamGenerateContent (SSE)",
        // Cached content and thinking: thoughts are billed as output whether or not they are shown.
        reply: { ...piecesReply, thoughtTokens: 4, usage: { promptTokenCount: 3210, cachedContentTokenCount: 1024 } },
        upstream: { inputTokens: 3210, cachedTokens: 1024, outputTokens: CHAT_PIECES.length + 4, reasoningTokens: 4 },
        price: LIST_PRICES[NEWAPI.gemini],
        priceName: "Gemini 2.5 Flash's shipped price",
      }),
    );
    for (const [id, apiMode, keyName, userId, wire, wireName, switchState] of [
      ['6c', 'responses', 'newapi-gpt-responses', 'carol', /^\/v1\/responses$/, "OpenAI's Responses API", '"Use Responses API" on'],
      ['6d', 'chatCompletion', 'newapi-gpt-chat', 'dave', /^\/v1\/chat\/completions$/, "OpenAI's Chat Completions", '"Use Responses API" off, LobeHub\'s default for New API'],
    ]) {
      await record(id, `LobeHub 2.x: New API provider, ${NEWAPI.gpt} (${switchState}) — the OpenAI SDK to lobe-quota's /v1, charged to ${userId === 'carol' ? 'Carol' : 'Dave'}`, {}, (ctx) =>
        checkNewApiChat(ctx, {
          ...newApi,
          key: newApiKeys[keyName],
          userId,
          model: NEWAPI.gpt,
          apiMode,
          fake,
          upstreamName: 'OpenAI',
          upstreamKey: UPSTREAM_KEYS.openai,
          wire,
          wireName,
          reply: { ...piecesReply, reasoningTokens: 3, usage: { prompt_tokens: 1500, cached_tokens: 512 } },
          upstream: { inputTokens: 1500, cachedTokens: 512, outputTokens: CHAT_PIECES.length + 3, reasoningTokens: 3 },
          price: LIST_PRICES[NEWAPI.gpt],
          priceName: "GPT-5 mini's shipped price",
        }),
      );
    }
    await record('6e', "LobeHub 2.x: New API provider, Fetch model list — the Claude, Gemini and GPT cards show lobe-quota's /api/pricing prices", {}, async ({ expect, note }) => {
      const mark = recorder.records.length;
      // This time the base URL with /v1, as LobeHub's hint for the field suggests: the same result.
      const out = await lobe2.models({ provider: 'newapi', apiKey: newApiKeys['newapi-models'].key, baseURL: `${recorder.url}/v1` });
      for (const r of recorder.since(mark)) note(`LobeHub → lobe-quota: ${r.method} ${r.path} → ${r.status} (${r.headers.authorization ? `authorization: ${maskKey(r.headers.authorization)}` : 'no key'})`);
      if (!out.cards) {
        expect(false, `LobeHub's model list route answered HTTP ${out.status}: ${JSON.stringify(out.error).slice(0, 300)}`);
        return;
      }
      note(`LobeHub's model list: ${out.cards.length} cards: ${out.cards.map((c) => c.id).join(', ')}`);
      const pricing = await (await fetch(`${service.url}/api/pricing`)).json();
      for (const [model, price, whose] of [
        [NEWAPI.claude, LIST_PRICES[NEWAPI.claude], 'shipped'],
        [NEWAPI.gemini, LIST_PRICES[NEWAPI.gemini], 'shipped'],
        [NEWAPI.gpt, LIST_PRICES[NEWAPI.gpt], 'shipped'],
        [MODEL, PRICE, 'configured'],
      ]) {
        const card = out.cards.find((c) => c.id === model);
        const entry = pricing.data.find((e) => e.model_name === model);
        const shown = shownPrices(card);
        note(
          `${model}: /api/pricing model_ratio ${entry?.model_ratio}, completion_ratio ${entry?.completion_ratio}, endpoints ${JSON.stringify(entry?.supported_endpoint_types)}; ` +
            (card ? `LobeHub's card shows $${shown.textInput} in / $${shown.textOutput} out per 1M` : 'no card: LobeHub lists only what /v1/models lists'),
        );
        expect(card !== undefined && shown.textInput === price.input && shown.textOutput === price.output, `${model}: $${price.input} in / $${price.output} out per 1M, our ${whose} price`);
      }
    });

    extra.push(
      'Downloads (cached in .compat/):',
      ...TARGETS.map((t) => `  ${t.spec}: tarball ${mb(built[t.id].tarballBytes)}, its dependencies ${mb(built[t.id].depsBytes)} on disk, bundle ${mb(built[t.id].bundleBytes)}`),
      'Versions the ranges LobeChat pins resolved to:',
      ...TARGETS.map((t) => `  ${t.label}: ${installedVersions(built[t.id].depsDir).join(', ')}`),
    );
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.exitCode = printReport(extra) > 0 ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  printReport([]);
  process.exitCode = 1;
});
