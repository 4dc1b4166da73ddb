import type { AccountService } from '../accounts/accountService.js';
import type { AdminService } from '../accounts/adminService.js';
import type { FreshAuthRule } from '../accounts/freshAuth.js';
import type { AuthService, ClientInfo } from '../auth/authService.js';
import type { RefreshTokenTransport } from '../config.js';
import type { Logger } from '../logger.js';
import { type TesseraError, unauthenticated } from '../errors.js';
import type { SecurityEventService } from '../events/eventService.js';
import type { FactorService } from '../factors/factorService.js';
import type { IdentityService } from '../identity/identityService.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import type { Loaders } from './loaders.js';
import type { LiveChannel } from '../realtime/types.js';

/** The caller, as proven by a verified access token of a live session. */
export interface AuthenticatedUser {
  id: string;
  sessionId: string;
  roles: string[];
  scopes: string[];
  claims: AccessTokenClaims;
}

/**
 * What an operation wants done with the client's refresh cookie (cookie/both transport). The
 * resolvers only say so; the HTTP layer writes the cookie (src/http/refreshCookie.ts), in the
 * order asked, once the operation has run.
 */
export interface RefreshCookieIntents {
  /** The cookie now holds `token`, until `expiresAt` (epoch ms) as seen at `issuedAt`. */
  setRefresh(token: string, expiresAt: number, issuedAt: number): void;
  /** The cookie is to be removed. */
  clear(): void;
}

/** One request's id and its logger (a child of the gateway's, made only if something logs). */
export interface RequestScope {
  readonly id: string;
  /** Every line it writes carries `requestId`. */
  readonly logger: Logger;
}

/** What every resolver receives. Built once per request by the ContextBuilder. */
export interface GraphQLContext {
  /** null when the request carries no valid access token: see `authFailure`. */
  user: AuthenticatedUser | null;
  /** The session of the access token in this request. */
  sessionId: string | null;
  /** Why `user` is null (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, SESSION_REVOKED, or the store being down). */
  authFailure: TesseraError | null;
  client: ClientInfo;
  /** The refresh token from the request's cookie, in cookie/both transport. */
  refreshCookie: string | null;
  /** How the refresh token travels. */
  refreshTransport: RefreshTokenTransport;
  cookies: RefreshCookieIntents;
  loaders: Loaders;
  auth: AuthService;
  /** The request's id (a valid incoming `x-request-id`, or a new one), as in its response and log lines. */
  requestId: string;
  /** The gateway's logger for this request: every line carries `requestId`. */
  logger: Logger;
  /** Reading security events (securityEvents, auditEvents). */
  events: SecurityEventService;
  /** Second factors and the MFA step of sign-in (schema/factors.graphql). */
  factors: FactorService;
  /** Sign-in with other identity providers; null when none are configured. */
  identity: IdentityService | null;
  /** FRESH_AUTH_MAX_AGE: `requireFreshAuth(context)` (src/accounts/freshAuth.ts). */
  freshAuth: FreshAuthRule;
  /** A user's own account flows (section 7). */
  accounts: AccountService;
  /** Administration (section 7): role `admin` only. */
  admin: AdminService;
  /** Over WebSocket: the connection the operation runs on (src/realtime); over HTTP none. */
  live?: LiveChannel | undefined;
}

/** The caller, or the error that says why there is none. */
export function requireUser(context: GraphQLContext): AuthenticatedUser {
  if (context.user) return context.user;
  throw context.authFailure ?? unauthenticated('TOKEN_MISSING');
}
