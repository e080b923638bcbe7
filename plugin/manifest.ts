import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pluginManifestSchema, type LobeChatPluginManifest } from '@lobehub/chat-plugin-sdk';
import { projectRoot } from './project-root.js';

/** The origin `manifest.json` is written against (the template's dev port, and ours). */
export const MANIFEST_DEV_ORIGIN = 'http://localhost:3400';

/**
 * Read at run time (a JSON import would be copied into dist/ by tsc) and checked once at load: a
 * manifest LobeChat would refuse (it runs this same schema when installing and again on every
 * call) should stop the server at start, not fail in a user's chat.
 */
function loadTemplate(): LobeChatPluginManifest {
  const file = path.join(projectRoot(), 'manifest.json');
  const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const checked = pluginManifestSchema.safeParse(raw);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`lobe-quota: ${file} is not a valid LobeChat plugin manifest: ${problems}`);
  }
  // Keep the raw object, not `checked.data`: zod strips the JSON Schemas' `properties` to `{}`.
  return raw as LobeChatPluginManifest;
}

const template = loadTemplate();

/** A deep copy of `value` with every URL on the dev origin moved onto `base`. */
function rebase<T>(value: T, base: string): T {
  if (typeof value === 'string') {
    const atDevOrigin = value === MANIFEST_DEV_ORIGIN || value.startsWith(`${MANIFEST_DEV_ORIGIN}/`);
    return (atDevOrigin ? base + value.slice(MANIFEST_DEV_ORIGIN.length) : value) as T;
  }
  if (Array.isArray(value)) return value.map((item: unknown) => rebase(item, base)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rebase(v, base)])) as T;
  }
  return value;
}

/**
 * The manifest as served: `manifest.json` with its `http://localhost:3400` URLs (the api, the card)
 * pointed at `baseUrl`, e.g. `https://quota.example.com`. LobeChat needs absolute URLs here: the
 * gateway POSTs to `api[].url` from its server and the browser loads `ui.url` into an iframe.
 */
export function buildManifest(baseUrl: string): LobeChatPluginManifest {
  return rebase(template, baseUrl.replace(/\/+$/, ''));
}
