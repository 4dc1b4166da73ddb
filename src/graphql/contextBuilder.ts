import type { AuthService, ClientInfo } from '../auth/authService.js';
import type { Clock } from '../clock.js';
import type { RefreshTokenTransport } from '../config.js';
import { type CookieContext, readRefreshCookie } from '../http/refreshCookie.js';
import { serviceUnavailable, StoreUnavailableError, type TesseraError, unauthenticated } from '../errors.js';
import type { RevocationFeed } from '../sessions/revocationFeed.js';
import type { Store } from '../store/types.js';
import type { AccessTokenService } from '../tokens/accessTokens.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import type { AuthenticatedUser, GraphQLContext, ResponseHeaders } from './context.js';
import { createLoaders, type Loaders } from './loaders.js';

export interface ContextBuilderDeps {
  refreshTransport: RefreshTokenTransport;
  accessTokens: AccessTokenService;
  revocations: RevocationFeed;
  store: Store;
  clock: Clock;
  auth: AuthService;
}

export interface RequestFacts {
  authorization: string | undefined;
  cookie: string | undefined;
  cookies: CookieContext;
  client: ClientInfo;
  response: ResponseHeaders;
}

type Authentication = { user: AuthenticatedUser } | { failure: TesseraError; sessionId?: string };

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Verifies the bearer token once per request and builds the typed context. A bad token never
 * fails the request: it leaves `user` null and says why in `authFailure`, so login, signup and
 * refresh still work, and only fields that need a user fail.
 */
export class ContextBuilder {
  constructor(private readonly deps: ContextBuilderDeps) {}

  async build(request: RequestFacts): Promise<GraphQLContext> {
    const loaders = createLoaders(this.deps.store, this.deps.clock);
    const auth = await this.authenticate(request.authorization, loaders);
    return {
      user: 'user' in auth ? auth.user : null,
      sessionId: 'user' in auth ? auth.user.sessionId : null,
      authFailure: 'failure' in auth ? auth.failure : null,
      client: request.client,
      refreshCookie:
        this.deps.refreshTransport === 'body' ? null : readRefreshCookie(request.cookie ?? null, request.cookies),
      refreshTransport: this.deps.refreshTransport,
      cookies: request.cookies,
      loaders,
      auth: this.deps.auth,
      response: request.response,
    };
  }

  private async authenticate(header: string | undefined, loaders: Loaders): Promise<Authentication> {
    if (header === undefined || header === '') return { failure: unauthenticated('TOKEN_MISSING') };
    const token = BEARER.exec(header)?.[1];
    if (!token) return { failure: unauthenticated('TOKEN_INVALID') };
    const verified = await this.deps.accessTokens.verify(token);
    if (!verified.ok) return { failure: unauthenticated(verified.reason) };
    const live = await this.sessionIsLive(verified.claims, loaders);
    if (live !== true) return { failure: live };
    return { user: toUser(verified.claims) };
  }

  /** Revocation from the pushed feed; the store only while the feed is not known to be healthy. */
  private async sessionIsLive(claims: AccessTokenClaims, loaders: Loaders): Promise<true | TesseraError> {
    const status = this.deps.revocations.status(claims.sid);
    if (status === 'revoked') return unauthenticated('SESSION_REVOKED');
    if (status === 'live') return true;
    const ticket = this.deps.revocations.ticket();
    try {
      const session = await loaders.sessions.load({ userId: claims.sub, sessionId: claims.sid });
      if (!session) return unauthenticated('SESSION_REVOKED');
      this.deps.revocations.confirm(claims.sid, ticket);
      return true;
    } catch (error) {
      if (error instanceof StoreUnavailableError) return serviceUnavailable();
      throw error;
    }
  }
}

function toUser(claims: AccessTokenClaims): AuthenticatedUser {
  return {
    id: claims.sub,
    sessionId: claims.sid,
    roles: claims.roles,
    scopes: claims.scope.split(' ').filter(Boolean),
    claims,
  };
}
