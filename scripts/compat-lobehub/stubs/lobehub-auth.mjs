// Stands in for LobeHub 2.x `src/app/(backend)/middleware/auth/index.ts`: the signed-in check
// (better-auth session, X-lobe-chat-auth, OIDC) and the database connection. It hands the route
// what the real one does after a successful login — a clone of the request, the user id and a
// database handle (unused: the provider settings come from the aiProvider model stub).
import { session } from './session.mjs';

export const checkAuth = (handler) => async (req, options) =>
  handler(req.clone(), { ...options, jwtPayload: { userId: session.userId }, serverDB: null, userId: session.userId });
