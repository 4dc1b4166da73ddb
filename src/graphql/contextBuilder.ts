import type { AccountService } from '../accounts/accountService.js';
import type { AdminService } from '../accounts/adminService.js';
import type { FreshAuthRule } from '../accounts/freshAuth.js';
import type { AuthService, ClientInfo } from '../auth/authService.js';
import type { Clock } from '../clock.js';
import type { RefreshTokenTransport } from '../config.js';
import type { Logger } from '../logger.js';
import { type Metrics, noMetrics, type TokenCache } from '../observability/metrics.js';
import {
  serviceUnavailable,
  StoreUnavailableError,
  type TesseraError,
  type TokenRejection,
  unauthenticated,
} from '../errors.js';
import type { SecurityEventService } from '../events/eventService.js';
import type { FactorService } from '../factors/factorService.js';
import type { IdentityService } from '../identity/identityService.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { Store } from '../store/types.js';
import type { AccessTokenService } from '../tokens/accessTokens.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import type { AuthenticatedUser, GraphQLContext, RefreshCookieIntents, RequestScope } from './context.js';
import { createLoaders, type Loaders } from './loaders.js';

export interface ContextBuilderDeps {
  refreshTransport: RefreshTokenTransport;
  accessTokens: AccessTokenService;
  revocations: RevocationFeed;
  store: Store;
  clock: Clock;
  auth: AuthService;
  metrics?: Metrics;
  events: SecurityEventService;
  factors: FactorService;
  /** Sign-in with other identity providers; absent or null when none are configured. */
  identity?: IdentityService | null;
  freshAuth: FreshAuthRule;
  accounts: AccountService;
  admin: AdminService;
}

/** What the transport tells about one request. */
export interface RequestFacts {
  authorization: string | undefined;
  /** The refresh token of the request's cookie, if any (read only in cookie/both transport). */
  readRefreshCookie: () => string | null;
  /** Where resolvers' changes to the refresh cookie go; the transport applies them. */
  cookies: RefreshCookieIntents;
  client: ClientInfo;
  /** The request's id and logger. */
  request: RequestScope;
}

/** Who the caller is, or why there is nobody (the error itself is only made if someone asks). */
type Authentication = { user: AuthenticatedUser } | { rejection: TokenRejection } | { failure: TesseraError };

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Verifies the bearer token once per request and builds the typed context. A bad token never
 * fails the request: it leaves `user` null and says why in `authFailure`, so login, signup and
 * refresh still work, and only fields that need a user fail.
 *
 * The hot path (a token seen before, of a live session) makes no store round trip and checks no
 * signature: the claims come from AccessTokenService's cache of verified tokens (synchronously),
 * the session's revocation from the pushed feed (checked on every request, cached token or not),
 * and the per-request loaders are only made if a resolver (or the feed's fallback) uses them.
 */
export class ContextBuilder {
  private readonly metrics: Metrics;

  constructor(private readonly deps: ContextBuilderDeps) {
    this.metrics = deps.metrics ?? noMetrics;
  }

  async build(request: RequestFacts): Promise<GraphQLContext> {
    const { store, clock, refreshTransport, auth, events, factors, freshAuth, accounts, admin } = this.deps;
    const loaders = new LazyLoaders(store, clock);
    const authentication = await this.authenticate(request.authorization, loaders);
    return new RequestContext(authentication, {
      client: request.client,
      refreshCookie: refreshTransport === 'body' ? null : request.readRefreshCookie(),
      refreshTransport,
      cookies: request.cookies,
      loaders,
      auth,
      request: request.request,
      events,
      factors,
      identity: this.deps.identity ?? null,
      freshAuth,
      accounts,
      admin,
    });
  }

  private async authenticate(header: string | undefined, loaders: Loaders): Promise<Authentication> {
    if (header === undefined || header === '') return { rejection: 'TOKEN_MISSING' };
    const token = BEARER.exec(header)?.[1];
    if (!token) return this.counted({ rejection: 'TOKEN_INVALID' }, 'miss');
    let claims = this.deps.accessTokens.cachedClaims(token);
    const cache = claims === undefined ? 'miss' : 'hit';
    if (claims === undefined) {
      const verified = await this.deps.accessTokens.verify(token);
      if (!verified.ok) return this.counted({ rejection: verified.reason }, cache);
      claims = verified.claims;
    }
    const feed = this.deps.revocations.status(claims.sid);
    const session = feed === 'unknown' ? await this.askStore(claims, loaders) : feed;
    if (session === 'live') return this.counted({ user: toUser(claims) }, cache);
    if (session !== 'revoked') return { failure: session };
    this.deps.accessTokens.forget(token);
    return this.counted({ rejection: 'SESSION_REVOKED' }, cache);
  }

  /** tessera_access_tokens_verified_total: what became of a presented token. */
  private counted(authentication: Authentication, cache: TokenCache): Authentication {
    const result =
      'user' in authentication
        ? 'valid'
        : 'rejection' in authentication && authentication.rejection === 'TOKEN_EXPIRED'
          ? 'expired'
          : 'rejection' in authentication && authentication.rejection === 'SESSION_REVOKED'
            ? 'revoked'
            : 'invalid';
    this.metrics.accessTokenVerified(result, cache);
    return authentication;
  }

  /** While the revocation feed is not known to be healthy: is the session still in the store? */
  private async askStore(claims: AccessTokenClaims, loaders: Loaders): Promise<'live' | 'revoked' | TesseraError> {
    const ticket = this.deps.revocations.ticket();
    try {
      const session = await loaders.sessions.load({ userId: claims.sub, sessionId: claims.sid });
      if (!session) {
        // Remembered like a pushed revocation (ids are never reused): its later requests cost no read.
        this.deps.revocations.noteRevoked([claims.sid]);
        return 'revoked';
      }
      this.deps.revocations.confirm(claims.sid, ticket);
      return 'live';
    } catch (error) {
      if (error instanceof StoreUnavailableError) return serviceUnavailable();
      throw error;
    }
  }
}

const AUTHENTICATION = Symbol('authentication');
const FAILURE = Symbol('authFailure');
const SCOPE = Symbol('requestScope');

type ContextFields = Omit<GraphQLContext, 'user' | 'sessionId' | 'authFailure' | 'requestId' | 'logger'> & { request: RequestScope };

/**
 * The context object. `authFailure` is a getter on the prototype, so its error is made on first
 * read only: an error captures a stack trace (tens of microseconds), and requests that need no
 * user (login, signup, refresh) never read it. On the prototype rather than the object because
 * Apollo runs each operation on a shallow copy of the context (same prototype, own properties
 * copied), which would read an own getter.
 */
class RequestContext implements GraphQLContext {
  readonly user: AuthenticatedUser | null;
  readonly sessionId: string | null;
  readonly client: ContextFields['client'];
  readonly refreshCookie: ContextFields['refreshCookie'];
  readonly refreshTransport: ContextFields['refreshTransport'];
  readonly cookies: ContextFields['cookies'];
  readonly loaders: ContextFields['loaders'];
  readonly auth: ContextFields['auth'];
  readonly requestId: string;
  readonly [SCOPE]: RequestScope;
  readonly events: ContextFields['events'];
  readonly factors: ContextFields['factors'];
  readonly identity: ContextFields['identity'];
  readonly freshAuth: ContextFields['freshAuth'];
  readonly accounts: ContextFields['accounts'];
  readonly admin: ContextFields['admin'];
  readonly [AUTHENTICATION]: Authentication;
  [FAILURE]: TesseraError | undefined;

  constructor(authentication: Authentication, fields: ContextFields) {
    this.user = 'user' in authentication ? authentication.user : null;
    this.sessionId = this.user ? this.user.sessionId : null;
    this.client = fields.client;
    this.refreshCookie = fields.refreshCookie;
    this.refreshTransport = fields.refreshTransport;
    this.cookies = fields.cookies;
    this.loaders = fields.loaders;
    this.auth = fields.auth;
    this.requestId = fields.request.id;
    this[SCOPE] = fields.request;
    this.events = fields.events;
    this.factors = fields.factors;
    this.identity = fields.identity;
    this.freshAuth = fields.freshAuth;
    this.accounts = fields.accounts;
    this.admin = fields.admin;
    this[AUTHENTICATION] = authentication;
    this[FAILURE] = undefined;
  }

  /** On the prototype, like authFailure: the request's child logger is made only if something logs. */
  get logger(): Logger {
    return this[SCOPE].logger;
  }

  get authFailure(): TesseraError | null {
    const authentication = this[AUTHENTICATION];
    if ('failure' in authentication) return authentication.failure;
    if (!('rejection' in authentication)) return null;
    return (this[FAILURE] ??= unauthenticated(authentication.rejection));
  }
}

/** Loaders made on first use, both at once (so they batch together as before). */
class LazyLoaders implements Loaders {
  private made: Loaders | undefined = undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  get users(): Loaders['users'] {
    return (this.made ??= createLoaders(this.store, this.clock)).users;
  }

  get sessions(): Loaders['sessions'] {
    return (this.made ??= createLoaders(this.store, this.clock)).sessions;
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
