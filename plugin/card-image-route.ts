import { Hono } from 'hono';
import { z } from 'zod';
import { ADMIN_TOKEN_PREFIX, bearerToken } from '../server/auth/secrets.js';
import type { AppEnv, Services } from '../server/http/app-env.js';
import { ApiError, errorJson } from '../server/http/errors.js';
import { queryOf } from '../server/http/validate.js';
import { quotaForKey } from '../server/quota/own-status.js';
import { localeFromAcceptLanguage } from './accept-language.js';
import { renderQuotaCard } from './card-image/render-card.js';

export const CARD_IMAGE_PATH = '/plugin/card-image';

export const cardImageQuerySchema = z.object({
  locale: z.enum(['en', 'zh']).optional().describe('Language of the card; default from Accept-Language (zh… is Chinese), else English'),
});

/**
 * `GET /plugin/card-image`: the card `check_quota` sends over MCP, as a PNG, for whoever holds the
 * `lq-` key in the bearer header (their own status only; the admin token has none). The caller
 * is settled before the query is read, and nothing is cached: it is one person's live figures.
 */
export function cardImageRoutes(services: Services) {
  return new Hono<AppEnv>().get(CARD_IMAGE_PATH, async (c) => {
    const token = bearerToken(c.req.header('authorization'));
    const status = token === null ? null : await quotaForKey(services, token);
    if (status === null) {
      c.header('WWW-Authenticate', token === null ? 'Bearer realm="lobe-quota"' : 'Bearer realm="lobe-quota", error="invalid_token"');
      const message =
        token === null
          ? 'missing "Authorization: Bearer lq-…" header'
          : token.startsWith(ADMIN_TOKEN_PREFIX)
            ? 'the admin token has no quota of its own: use a personal lq- key'
            : 'unknown or revoked key';
      return errorJson(c, new ApiError('unauthorized', message));
    }
    const { locale = localeFromAcceptLanguage(c.req.header('accept-language')) } = queryOf(c, cardImageQuerySchema);
    const { png } = await renderQuotaCard(status, { locale, now: services.clock.now() });
    // Copied into a plain Uint8Array: Hono's body type excludes Buffer's possibly shared memory.
    return c.body(new Uint8Array(png), 200, { 'Content-Type': 'image/png', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  });
}
