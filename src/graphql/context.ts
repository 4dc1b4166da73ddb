import type { AuthService, ClientInfo } from '../auth/authService.js';
import type { RefreshTokenTransport } from '../config.js';
import type { CookieContext } from '../http/refreshCookie.js';
import type { Logger } from '../logger.js';
import { type TesseraError, unauthenticated } from '../errors.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import type { Loaders } from './loaders.js';

/** The caller, as proven by a verified access token of a live session. */
export interface AuthenticatedUser {
  id: string;
  sessionId: string;
  roles: string[];
  scopes: string[];
  claims: AccessTokenClaims;
}

/** Response headers a resolver may set (Set-Cookie …). */
export interface ResponseHeaders {
  append(name: string, value: string): void;
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
  /** How the refresh token travels, and how its cookie is written for this request. */
  refreshTransport: RefreshTokenTransport;
  cookies: CookieContext;
  loaders: Loaders;
  auth: AuthService;
  response: ResponseHeaders;
  /** The request's id (a valid incoming `x-request-id`, or a new one), as in its response and log lines. */
  requestId: string;
  /** The gateway's logger for this request: every line carries `requestId`. */
  logger: Logger;
}

/** The caller, or the error that says why there is none. */
export function requireUser(context: GraphQLContext): AuthenticatedUser {
  if (context.user) return context.user;
  throw context.authFailure ?? unauthenticated('TOKEN_MISSING');
}
