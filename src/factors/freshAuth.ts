import { ErrorCode, TesseraError } from '../errors.js';
import type { GraphQLContext } from '../graphql/context.js';

/**
 * PLACEHOLDER until the accounts branch lands its fresh-auth rule (contract section 7): the
 * access token's `auth_time` within 5 minutes, else FORBIDDEN STEP_UP_REQUIRED. Tokens without
 * `auth_time` count as signed in at `iat`.
 */
const MAX_AGE_SECONDS = 300;

export function requireFreshAuth(context: GraphQLContext): void {
  const claims = context.user?.claims as { auth_time?: number; iat: number } | undefined;
  if (!claims) return;
  const authTime = typeof claims.auth_time === 'number' ? claims.auth_time : claims.iat;
  if (Date.now() / 1000 - authTime <= MAX_AGE_SECONDS) return;
  throw new TesseraError(ErrorCode.FORBIDDEN, 'This needs a recent sign-in: reauthenticate first.', { extra: { reason: 'STEP_UP_REQUIRED', maxAge: MAX_AGE_SECONDS } });
}
