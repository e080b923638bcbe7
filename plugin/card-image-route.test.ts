import { describe, expect, it } from 'vitest';
import type { DefaultBudget } from '../server/config/schema.js';
import type { QuotaStatus } from '../server/quota/status-report.js';
import { ADMIN_TOKEN, testService, userWithKey } from '../server/testing/harness.js';
import { STATUS_COLORS } from './card-image/card-colors.js';
import { CARD_SCALE, CARD_WIDTH, cardLayout } from './card-image/card-layout.js';
import { barPoints, decodePng, opaque, pixelAt } from './card-image/card-png.test-util.js';
import { renderQuotaCard } from './card-image/render-card.js';

const userMonthly: DefaultBudget = { scope: 'user', window: { kind: 'month', timeZone: 'Asia/Shanghai' }, limitTokens: 100_000, limitUsd: null, onLimit: 'reject' };

/** Alice at 78.5 % of her month, Bob at 12 %. */
async function twoUsers() {
  const svc = testService({ defaultBudgets: [userMonthly] });
  const alice = await userWithKey(svc.store, 'alice');
  const bob = await userWithKey(svc.store, 'bob');
  for (const [who, tokens] of [[alice, 78_500], [bob, 12_000]] as const) {
    await svc.store.settle({
      holdId: `h-${who.subject.userId}`,
      subject: who.subject,
      usage: { model: 'gpt-4o', inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0, costMicros: 0, source: 'upstream', outcome: 'ok', latencyMs: 1, sessionId: null, tags: {} },
      now: svc.clock.now(),
    });
  }
  return { svc, alice, bob };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
const bytesOf = async (response: Response) => Buffer.from(await response.arrayBuffer());

describe('GET /plugin/card-image', () => {
  it("answers with the key holder's own card as an uncached PNG", async () => {
    const { svc, alice, bob } = await twoUsers();
    const response = await svc.as(alice.secret, '/plugin/card-image');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const png = await bytesOf(response);
    expect(png.length).toBeLessThanOrEqual(150 * 1024);

    // Exactly the card of alice's own /quota, and not bob's.
    const status = (await (await svc.as(alice.secret, '/quota')).json()) as QuotaStatus;
    expect(png.equals((await renderQuotaCard(status, { locale: 'en', now: svc.clock.now() })).png)).toBe(true);
    expect(png.equals(await bytesOf(await svc.as(bob.secret, '/plugin/card-image')))).toBe(false);

    const image = decodePng(png);
    expect([image.width, image.height]).toEqual([CARD_WIDTH * CARD_SCALE, cardLayout(status, { locale: 'en', now: svc.clock.now() }).height * CARD_SCALE]);
    expect(pixelAt(image, ...barPoints(78.5).filled!)).toEqual(opaque(STATUS_COLORS.normal));
  });

  it('speaks Chinese with ?locale=zh, or by default when Accept-Language prefers it', async () => {
    const { svc, alice } = await twoUsers();
    const english = await bytesOf(await svc.as(alice.secret, '/plugin/card-image'));
    const chinese = await bytesOf(await svc.as(alice.secret, '/plugin/card-image?locale=zh'));
    expect(chinese.equals(english)).toBe(false);
    const byHeader = await bytesOf(await svc.as(alice.secret, '/plugin/card-image', { headers: { 'accept-language': 'zh-TW,zh;q=0.9' } }));
    expect(byHeader.equals(chinese)).toBe(true);
    const asked = await bytesOf(await svc.as(alice.secret, '/plugin/card-image?locale=en', { headers: { 'accept-language': 'zh-CN' } }));
    expect(asked.equals(english)).toBe(true);
  });

  it('refuses a locale it does not speak, naming the field', async () => {
    const { svc, alice } = await twoUsers();
    const response = await svc.as(alice.secret, '/plugin/card-image?locale=fr');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('locale') } });
  });

  it.each([
    ['no Authorization header', undefined, 'Bearer realm="lobe-quota"'],
    ['an unknown key', 'Bearer lq-not-a-real-key-000000000000000000', 'Bearer realm="lobe-quota", error="invalid_token"'],
    ['the admin token', `Bearer ${ADMIN_TOKEN}`, 'Bearer realm="lobe-quota", error="invalid_token"'],
    ['Basic credentials', 'Basic YWxpY2U6eA==', 'Bearer realm="lobe-quota"'],
  ])('answers %s with 401 and no image', async (_name, authorization, challenge) => {
    const { svc } = await twoUsers();
    // A bad locale as well: who is calling is settled first, so it learns nothing of the query rules.
    const response = await svc.app.request('/plugin/card-image?locale=fr', { headers: authorization ? { authorization } : {} });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(challenge);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await bytesOf(response);
    expect(body.includes(PNG_SIGNATURE)).toBe(false);
    expect(JSON.parse(body.toString())).toMatchObject({ error: { code: 'unauthorized' } });
  });

  it('stops answering a key once it is revoked', async () => {
    const { svc, alice } = await twoUsers();
    expect((await svc.as(alice.secret, '/plugin/card-image')).status).toBe(200);
    expect((await svc.admin('DELETE', `/admin/keys/${alice.subject.keyId}`)).status).toBe(200);
    const response = await svc.as(alice.secret, '/plugin/card-image');
    expect(response.status).toBe(401);
    expect((await bytesOf(response)).includes(PNG_SIGNATURE)).toBe(false);
  });
});
