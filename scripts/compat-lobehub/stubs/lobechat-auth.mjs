// Stands in for LobeChat 1.x `src/app/(backend)/middleware/auth/index.ts`: it reads the
// X-lobe-chat-auth header with LobeChat's own decoder, as the real one does, but skips the sign-in
// checks behind it (Clerk, NextAuth, OIDC, access code), which need LobeChat's auth services.
import { LOBE_CHAT_AUTH_HEADER } from '@lobechat/const';
import { getXorPayload } from '@lobechat/utils/server/xor';

export const checkAuth = (handler) => async (req, options) => {
  const authorization = req.headers.get(LOBE_CHAT_AUTH_HEADER);
  if (!authorization) return Response.json({ errorType: 'Unauthorized', body: null }, { status: 401 });
  return handler(req, { ...options, jwtPayload: getXorPayload(authorization) });
};
