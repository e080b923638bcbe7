import { readFileSync } from 'node:fs';
import { pluginManifestSchema, type LobeChatPluginManifest } from '@lobehub/chat-plugin-sdk';
import { describe, expect, it } from 'vitest';
import { testService } from '../server/testing/harness.js';
import { buildManifest, MANIFEST_DEV_ORIGIN } from './manifest.js';

const onDisk = JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8')) as LobeChatPluginManifest;

/** Every URL a manifest carries: what LobeChat fetches, POSTs to or frames. */
const urlsOf = (m: LobeChatPluginManifest): string[] => [...m.api.map((a) => a.url ?? ''), m.ui?.url ?? ''];

describe('buildManifest', () => {
  it('is valid under the SDK schema LobeChat runs at install and on every call', () => {
    const result = pluginManifestSchema.safeParse(buildManifest('https://quota.example.com'));
    expect(result.error?.issues ?? []).toEqual([]);
    // The checked-in file too, since that is what the server starts from.
    expect(pluginManifestSchema.safeParse(onDisk).success).toBe(true);
  });

  it('moves every localhost URL onto the base, and leaves the rest as written', () => {
    const manifest = buildManifest('https://quota.example.com/');
    expect(urlsOf(manifest)).toEqual(['https://quota.example.com/plugin/check-quota', 'https://quota.example.com/plugin/request-increase', 'https://quota.example.com/plugin/card.html']);
    expect(JSON.stringify(manifest)).not.toContain(MANIFEST_DEV_ORIGIN);
    expect({ ...manifest, api: [], ui: undefined }).toEqual({ ...onDisk, api: [], ui: undefined });
    // A fresh copy each time: one request's base never leaks into the next.
    expect(urlsOf(buildManifest('http://10.0.0.5:3400'))[0]).toBe('http://10.0.0.5:3400/plugin/check-quota');
  });

  it('has what LobeChat and the model need: one argument-free checkQuota, the key setting, the card', () => {
    const manifest = buildManifest('https://q.example');
    expect(manifest).toMatchObject({ identifier: 'lobe-quota', type: 'default', ui: { height: 280 } });
    expect(manifest.meta).toMatchObject({ title: expect.any(String), avatar: expect.any(String), description: expect.any(String) });
    expect(manifest.api.map((a) => a.name)).toEqual(['checkQuota', 'requestQuotaIncrease']);
    const api = manifest.api[0]!;
    expect(api.parameters).toEqual({ type: 'object', properties: {} });
    for (const cue of ['/check_quota', 'quota', 'usage', 'spending', 'remaining', 'limit', '额度']) expect(api.description).toContain(cue);
    for (const cue of ['/check_quota', 'checkQuota', '额度']) expect(manifest.systemRole).toContain(cue);
    expect(manifest.settings?.required).toEqual(['apiKey']);
    expect(manifest.settings?.properties.apiKey).toMatchObject({ type: 'string', title: expect.any(String), description: expect.stringContaining('lq-') });
  });
});

describe('GET /manifest.json', () => {
  it('builds its URLs from PUBLIC_URL, with CORS open for the browser that fetches it', async () => {
    const svc = testService({ config: { publicUrl: 'https://quota.example.com' } });
    const response = await svc.app.request('http://127.0.0.1:3400/manifest.json', { headers: { origin: 'https://chat.example.com' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    // LobeChat only uses res.json() for exactly this type (anything else goes through its YAML parser).
    expect(response.headers.get('content-type')).toMatch(/^application\/json\b/);
    const manifest = (await response.json()) as LobeChatPluginManifest;
    expect(urlsOf(manifest)).toEqual(['https://quota.example.com/plugin/check-quota', 'https://quota.example.com/plugin/request-increase', 'https://quota.example.com/plugin/card.html']);
    expect(pluginManifestSchema.safeParse(manifest).success).toBe(true);
  });

  it('without PUBLIC_URL points at the origin the request reached', async () => {
    const svc = testService({ config: { publicUrl: null } });
    const manifest = (await (await svc.app.request('http://192.168.1.20:8080/manifest.json')).json()) as LobeChatPluginManifest;
    expect(urlsOf(manifest)).toEqual(['http://192.168.1.20:8080/plugin/check-quota', 'http://192.168.1.20:8080/plugin/request-increase', 'http://192.168.1.20:8080/plugin/card.html']);
  });

  it('answers the CORS preflight', async () => {
    const svc = testService();
    const response = await svc.app.request('/manifest.json', {
      method: 'OPTIONS',
      headers: { origin: 'https://chat.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-custom' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-methods')).toContain('GET');
  });

  const served = async () => {
    const svc = testService({ config: { publicUrl: 'https://quota.example.com' } });
    return { svc, manifest: (await (await svc.app.request('/manifest.json')).json()) as LobeChatPluginManifest };
  };

  it('names api URLs this server routes: each answers a POST', async () => {
    const { svc, manifest } = await served();
    for (const api of manifest.api) {
      const response = await svc.app.request(new URL(api.url!).pathname, { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      expect(response.status, `POST ${api.url}`).not.toBe(404);
    }
  });

  it('names a card URL this server routes (plugin/card-route.ts)', async () => {
    const { svc, manifest } = await served();
    const card = await svc.app.request(new URL(manifest.ui!.url).pathname);
    expect(card.status, `GET ${manifest.ui!.url}`).not.toBe(404);
  });
});
