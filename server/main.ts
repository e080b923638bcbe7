import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertEvent } from './alerts/alert-event.js';
import { AlertSender } from './alerts/alert-sender.js';
import { createChannels } from './alerts/channels/index.js';
import { createApp } from './app.js';
import { ensureAdminToken } from './auth/admin-token.js';
import { systemClock } from './clock.js';
import { loadConfig, publicUrlOf, type Config } from './config/load.js';
import { nodeListener } from './http/node-listener.js';
import { startMaintenance } from './maintenance.js';
import { ResponseCache } from './proxy/response-cache/response-cache.js';
import { preloadEncodings } from './proxy/token-count.js';
import { Upstreams } from './proxy/upstreams.js';
import { openStore, type OpenedStore } from './store/open-store.js';

const MAINTENANCE_INTERVAL_MS = 15_000;
/** Spike detection and retention: an anomaly is about an hour, so a minute's delay is nothing. */
const SLOW_MAINTENANCE_INTERVAL_MS = 60_000;
/**
 * How often the outbox is looked at besides the wake-up of each alert recorded here: for retries (a
 * failed delivery waits for its own backoff) and for alerts that other instances recorded.
 */
const ALERT_INTERVAL_MS = 5_000;

function banner(config: Config, baseUrl: string, storeDescription: string, generatedToken: string | null): string {
  const lines = [
    `lobe-quota listening on ${baseUrl}  (${storeDescription})`,
    '',
    `  Proxy base URL   ${baseUrl}/v1`,
    `  Native APIs      ${baseUrl} for Anthropic, Gemini and LobeChat's New API; ${baseUrl}/ollama for Ollama`,
    `  Plugin manifest  ${baseUrl}/manifest.json`,
    `  MCP endpoint     ${baseUrl}/mcp`,
    `  Your quota       ${baseUrl}/quota`,
    '',
  ];
  // Without its key an upstream refuses every request; users would see lobe-quota's 502 for each.
  // A local Ollama takes no key.
  for (const upstream of config.upstreams.filter((u) => u.apiKey === undefined && u.api !== 'ollama')) {
    const variable = upstream.name === 'openai' ? 'OPENAI_API_KEY' : 'its apiKeyEnv';
    lines.push(`  Warning: the upstream "${upstream.name}" has no API key (set ${variable}); unless it needs none, it will refuse every request.`, '');
  }
  if (generatedToken !== null) {
    lines.push(
      `  Admin token      ${generatedToken}`,
      '                   shown once: only its hash is stored. Set ADMIN_TOKEN to choose your own.',
      '',
      'Next: add a user and give them a key',
      `  export ADMIN_TOKEN=${generatedToken} LOBE_QUOTA_URL=${baseUrl}`,
    );
  } else {
    lines.push(
      `  Admin token      ${config.adminToken !== undefined ? 'from ADMIN_TOKEN' : 'the one printed on first start (stored hashed)'}`,
      '',
      'Next: add a user and give them a key',
      `  export ADMIN_TOKEN=<admin token> LOBE_QUOTA_URL=${baseUrl}`,
    );
  }
  lines.push(
    '  npx lobe-quota users add alice',
    '  npx lobe-quota keys create --user alice',
    '  npx lobe-quota budgets set user:alice --tokens 100000 --per month',
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const loaded = loadConfig();
  if (!loaded.ok) {
    console.error(`lobe-quota cannot start; fix the configuration:\n${loaded.problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exit(1);
  }
  const config = loaded.config;
  const channels = createChannels(config.alerts.channels, { locale: config.alerts.locale });
  // The sender needs the store, and the store tells the sender when it records an alert.
  let alertSender: AlertSender | undefined;
  const alerts = {
    channelsFor: (alert: AlertEvent) => channels.filter((c) => c.accepts(alert)).map((c) => c.name),
    projection: config.alerts.projection,
    recorded: () => alertSender?.wake(),
  };
  let opened: OpenedStore;
  try {
    opened = await openStore(config, alerts, MAINTENANCE_INTERVAL_MS);
  } catch (error) {
    console.error(`lobe-quota cannot open its store: ${(error as Error).message}`);
    process.exit(1);
  }
  const { store, upkeep } = opened;
  const clock = systemClock;
  // Before serving: on SQLite, the requests the last process died with are settled at their last
  // count; on PostgreSQL the first heartbeat says this instance is alive before it takes any hold.
  await upkeep.run(clock.now());
  const adminToken = await ensureAdminToken(store, config.adminToken);
  const sender = new AlertSender({ store, channels, clock });
  alertSender = sender;
  sender.start(ALERT_INTERVAL_MS);
  // Alerts recorded before the sender existed (the upkeep's recoveries) and those left by the last run.
  sender.wake();
  const upstreams = Upstreams.fromConfig(config);
  // The response cache's own file beside the store's (local to this instance, also on PostgreSQL).
  const responseCache = config.cache.enabled ? ResponseCache.open(config.cache, clock, config.dataDir) : undefined;
  const app = createApp({ store, config, clock, adminTokenHash: adminToken.hash, upstreams, ...(responseCache ? { responseCache } : {}) });

  const server = createServer(nodeListener(app));
  server.listen(config.port, config.host, () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(banner(config, publicUrlOf(config, port), opened.description, adminToken.generated));
    // The tokenizer's tables take a few hundred ms to load: not on the first user's request.
    setImmediate(() => preloadEncodings(['o200k_base']));
  });
  server.on('error', (error) => {
    console.error(`lobe-quota cannot listen on ${config.host}:${config.port}: ${error.message}`);
    process.exit(1);
  });

  // Holds of requests that stopped renewing them (a stuck upstream) are released here; on
  // PostgreSQL also those of instances whose heartbeat stopped, after this one's own heartbeat.
  const maintenance = setInterval(() => {
    upkeep.run(clock.now()).catch((error: unknown) => console.error('[lobe-quota] hold upkeep failed:', (error as Error).message));
  }, upkeep.intervalMs);
  maintenance.unref();
  const stopSlowMaintenance = startMaintenance(store, config, () => clock.now(), SLOW_MAINTENANCE_INTERVAL_MS);

  const shutdown = (signal: string) => {
    console.log(`lobe-quota: ${signal}, closing`);
    clearInterval(maintenance);
    stopSlowMaintenance();
    server.close(() => {
      void sender
        .stop()
        .then(() => Promise.all([store.close(), upstreams.close(), ...channels.map((c) => c.close?.())]))
        .then(() => responseCache?.close())
        .then(() => process.exit(0));
    });
    // Streams still open after this long are cut. Their holds stay in the database, and the next
    // start (SQLite) or another instance (PostgreSQL) settles them at their last count.
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

await main();
