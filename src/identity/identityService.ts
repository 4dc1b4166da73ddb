import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthService, ClientInfo, IssuedSession, SessionAuthInput } from '../auth/authService.js';
import type { Clock } from '../clock.js';
import { badUserInput, forbiddenBecause, StoreUnavailableError, unauthenticated } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import { pooledRandomBytes, type RandomBytes } from '../random.js';
import type { Store, UserRecord } from '../store/types.js';
import { normalizeEmail } from '../users/credentials.js';
import { FlowError, type FlowErrorReason } from './flowError.js';
import { createProviderClient, type ProviderClient, type ProviderProfile } from './providers.js';
import type { IdentitySettings } from './settings.js';
import type { IdentityRecord } from './types.js';

/** A state lives this long between /start and /callback. */
export const STATE_TTL_MS = 10 * 60_000;
/** The one-time login code of the redirect (docs/contract.md section 9). */
export const LOGIN_CODE_TTL_MS = 60_000;
/** The ticket of startIdentityLink. */
export const LINK_TICKET_TTL_MS = 5 * 60_000;

/** 256 bits, base64url: states, nonces, PKCE verifiers, browser bindings, login codes, tickets. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;

/** What the HTTP layer is to answer. */
export type FlowAnswer =
  | { kind: 'redirect'; location: string; binding?: string }
  | { kind: 'bad_request'; error: string; message: string }
  /** The store did not answer, and there is no trusted redirect_uri to report it to. */
  | { kind: 'unavailable' }
  | { kind: 'not_found' };

/** How a session started by a provider's sign-in was authenticated (`amr` fed, RFC 8176). */
export const FEDERATED_AUTH: SessionAuthInput = Object.freeze({ amr: Object.freeze(['fed']), acr: 'aal1' });

/** Signs a user in after the provider vouched for them (AuthService). */
export type FederatedSessions = Pick<AuthService, 'startSession'>;

export interface IdentityServiceDeps {
  store: Store;
  clock: Clock;
  settings: IdentitySettings;
  /** AUTH_ISSUER: the callback is `issuer + /auth/{id}/callback`. */
  issuer: string;
  sessions: FederatedSessions;
  /** SIGNUP_ENABLED: whether a first sign-in may create an account. */
  signupEnabled: boolean;
  defaultRoles: string[];
  logger: Logger;
  /** Sessions a take-over ended are refused on this instance at once (the store also pushes them). */
  revocations?: Pick<RevocationFeed, 'noteRevoked'>;
  metrics?: Metrics;
  /** Tests hand in providers of their own; by default made from the settings. */
  providers?: ProviderClient[];
  random?: RandomBytes;
  newId?: () => string;
}

interface StateRecord {
  provider: string;
  redirectUri: string;
  nonce: string;
  codeVerifier: string;
  /** Hash of the browser's binding cookie. */
  binding: string;
  /** startIdentityLink: link to this user instead of signing in. */
  linkUserId: string | null;
}

interface LoginCodeRecord {
  userId: string;
  provider: string;
}

interface TicketRecord {
  userId: string;
  provider: string;
  redirectUri: string;
}

/**
 * Sign-in with other identity providers (docs/contract.md section 9): the browser flow
 * (`start`, `callback`), the login code's exchange, and the caller's identities. The HTTP layer
 * (src/http/identityRoutes.ts) only parses and writes what this answers.
 */
export class IdentityService {
  private readonly providers = new Map<string, ProviderClient>();
  private readonly random: RandomBytes;
  private readonly newId: () => string;

  constructor(private readonly deps: IdentityServiceDeps) {
    this.random = deps.random ?? pooledRandomBytes;
    this.newId = deps.newId ?? (() => newId());
    const made =
      deps.providers ??
      deps.settings.providers.map((p) =>
        createProviderClient(p, { callbackUrl: this.callbackUrl(p.id), timeoutMs: deps.settings.providerTimeoutMs, logger: deps.logger }),
      );
    for (const provider of made) this.providers.set(provider.id, provider);
  }

  callbackUrl(providerId: string): string {
    return `${this.deps.issuer.replace(/\/+$/, '')}/auth/${providerId}/callback`;
  }

  /** The injected clock's time (fresh-auth checks of the resolvers). */
  now(): number {
    return this.deps.clock.now();
  }

  hasProvider(id: string): boolean {
    return this.providers.has(id);
  }

  private allowedRedirect(uri: string | null): uri is string {
    return uri !== null && this.deps.settings.redirectUris.includes(uri);
  }

  /** `GET /auth/{id}/start?redirect_uri=…[&ticket=…]`. `binding` is the browser's binding cookie, if any. */
  async start(providerId: string, redirectUri: string | null, ticket: string | null, binding: string | null): Promise<FlowAnswer> {
    const provider = this.providers.get(providerId);
    if (!provider) return { kind: 'not_found' };
    if (!this.allowedRedirect(redirectUri)) {
      return { kind: 'bad_request', error: 'invalid_redirect_uri', message: 'redirect_uri is not one of AUTH_REDIRECT_URIS.' };
    }
    const { store, clock } = this.deps;
    try {
      let linkUserId: string | null = null;
      if (ticket !== null) {
        const held = SECRET.test(ticket) ? await store.takeFlowRecord('ticket', digest(ticket), clock.now()) : null;
        const record = held ? (JSON.parse(held) as TicketRecord) : null;
        if (!record || record.provider !== providerId || record.redirectUri !== redirectUri) {
          return errorRedirect(redirectUri, 'invalid_ticket');
        }
        linkUserId = record.userId;
      }
      const browser = binding !== null && SECRET.test(binding) ? binding : this.secret();
      const state = this.secret();
      const nonce = this.secret();
      const codeVerifier = this.secret();
      const location = await provider.authorizationUrl({ state, nonce, codeChallenge: s256(codeVerifier) });
      const record: StateRecord = { provider: providerId, redirectUri, nonce, codeVerifier, binding: digest(browser), linkUserId };
      const now = clock.now();
      await store.putFlowRecord('state', digest(state), JSON.stringify(record), now + STATE_TTL_MS, now);
      // Set again on every start, so the cookie lives as long as the newest state it binds.
      return { kind: 'redirect', location: location.href, binding: browser };
    } catch (error) {
      return errorRedirect(redirectUri, this.reasonOf(error));
    }
  }

  /** `GET /auth/{id}/callback?…`: `url` the whole callback URL as the provider sent the browser. */
  async callback(providerId: string, url: URL, binding: string | null, client: ClientInfo): Promise<FlowAnswer> {
    const provider = this.providers.get(providerId);
    if (!provider) return { kind: 'not_found' };
    const { store, clock } = this.deps;
    const state = url.searchParams.get('state');
    const badState = { kind: 'bad_request', error: 'invalid_state', message: 'The sign-in state is missing, expired or already used.' } as const;
    if (state === null || !SECRET.test(state)) return badState;
    let record: StateRecord;
    try {
      const held = await store.takeFlowRecord('state', digest(state), clock.now());
      if (!held) return badState;
      record = JSON.parse(held) as StateRecord;
    } catch (error) {
      if (error instanceof StoreUnavailableError) return { kind: 'unavailable' };
      throw error;
    }
    const back = record.redirectUri;
    // A state belongs to the browser that started the flow: a link to it opened elsewhere is useless.
    if (record.provider !== providerId || binding === null || !SECRET.test(binding) || !sameDigest(digest(binding), record.binding)) {
      return errorRedirect(back, 'invalid_state');
    }
    try {
      const profile = await provider.complete(url, { state, nonce: record.nonce, codeVerifier: record.codeVerifier });
      if (record.linkUserId !== null) {
        await this.linkTo(record.linkUserId, providerId, profile, client);
        return { kind: 'redirect', location: withParams(back, { linked: providerId }) };
      }
      const user = await this.resolveAccount(providerId, profile, client);
      const code = this.secret();
      const now = clock.now();
      const held: LoginCodeRecord = { userId: user.id, provider: providerId };
      await store.putFlowRecord('code', digest(code), JSON.stringify(held), now + LOGIN_CODE_TTL_MS, now);
      return { kind: 'redirect', location: withParams(back, { code }) };
    } catch (error) {
      return errorRedirect(back, this.reasonOf(error));
    }
  }

  /**
   * The account the provider's person signs into: the linked one; else, with an email the
   * provider asserts as verified, the account with that email, linked now (an account whose own
   * email was never verified loses its password and sessions in the same step); else a new one.
   */
  private async resolveAccount(providerId: string, profile: ProviderProfile, client: ClientInfo): Promise<UserRecord> {
    const { store, clock } = this.deps;
    const linked = await store.findIdentity(providerId, profile.subject);
    if (linked) {
      const [user] = await store.getUsers([linked.userId]);
      if (user) return this.usable(user);
    }
    const email = profile.email === null ? null : normalizeEmail(profile.email);
    if (email === null) throw new FlowError('email_missing');
    const existing = await store.findUserByEmail(email);
    if (existing) {
      // An email the provider does not vouch for never links: that is how accounts get taken over.
      if (!profile.emailVerified) throw new FlowError('email_not_verified');
      this.usable(existing);
      const takeOver = !existing.emailVerified;
      const result = await store.linkIdentity(
        {
          identity: this.identity(existing.id, providerId, profile, email),
          origin: client,
          takeOver: takeOver ? { cause: 'password_reset' } : null,
          markEmailVerified: true,
        },
        clock.now(),
      );
      if (result.status === 'taken') throw new FlowError('identity_in_use');
      if (result.revokedSessionIds.length > 0) {
        this.deps.revocations?.noteRevoked(result.revokedSessionIds);
        this.deps.metrics?.sessionsRevoked('password_reset', result.revokedSessionIds.length);
      }
      return existing;
    }
    if (!this.deps.signupEnabled) throw new FlowError('signup_disabled');
    const user = newFederatedUser(this.newId(), email, profile.emailVerified, this.deps.defaultRoles, clock.now());
    if ((await store.createUser(user, client)) === 'email_taken') throw new FlowError('email_not_verified');
    const result = await store.linkIdentity(
      { identity: this.identity(user.id, providerId, profile, email), origin: client, takeOver: null, markEmailVerified: false },
      clock.now(),
    );
    if (result.status === 'taken') throw new FlowError('identity_in_use');
    return user;
  }

  /** startIdentityLink's end: the identity joins the caller's account (never another's). */
  private async linkTo(userId: string, providerId: string, profile: ProviderProfile, client: ClientInfo): Promise<void> {
    const { store, clock } = this.deps;
    const [user] = await store.getUsers([userId]);
    if (!user) throw new FlowError('invalid_ticket');
    this.usable(user);
    const email = profile.email === null ? null : normalizeEmail(profile.email);
    const result = await store.linkIdentity(
      { identity: this.identity(userId, providerId, profile, email), origin: client, takeOver: null, markEmailVerified: false },
      clock.now(),
    );
    if (result.status === 'taken') throw new FlowError('identity_in_use');
  }

  private usable(user: UserRecord): UserRecord {
    if (user.disabled) throw new FlowError('account_disabled');
    return user;
  }

  private identity(userId: string, provider: string, profile: ProviderProfile, email: string | null): IdentityRecord {
    return { id: this.newId(), userId, provider, subject: profile.subject, email, linkedAt: this.deps.clock.now() };
  }

  /** `exchangeLoginCode`: the code of the redirect, once, within 60 s, for a session (`amr` fed). */
  async exchangeLoginCode(code: string, client: ClientInfo): Promise<IssuedSession> {
    const { store, clock } = this.deps;
    const held = SECRET.test(code) ? await store.takeFlowRecord('code', digest(code), clock.now()) : null;
    if (!held) throw unauthenticated('LOGIN_CODE_INVALID');
    const record = JSON.parse(held) as LoginCodeRecord;
    const [user] = await store.getUsers([record.userId]);
    if (!user) throw unauthenticated('LOGIN_CODE_INVALID');
    if (user.disabled) throw forbiddenBecause('ACCOUNT_DISABLED');
    return this.deps.sessions.startSession(user, client, FEDERATED_AUTH);
  }

  /** `startIdentityLink`: a start URL with a one-time ticket that links to `userId`. */
  async startLink(userId: string, providerId: string, redirectUri: string): Promise<string> {
    if (!this.providers.has(providerId)) throw badUserInput(`No identity provider "${providerId}" is configured.`);
    if (!this.allowedRedirect(redirectUri)) throw badUserInput('redirectUri is not one of AUTH_REDIRECT_URIS.');
    const { store, clock } = this.deps;
    const ticket = this.secret();
    const now = clock.now();
    const record: TicketRecord = { userId, provider: providerId, redirectUri };
    await store.putFlowRecord('ticket', digest(ticket), JSON.stringify(record), now + LINK_TICKET_TTL_MS, now);
    const url = new URL(`${this.deps.issuer.replace(/\/+$/, '')}/auth/${providerId}/start`);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('ticket', ticket);
    return url.href;
  }

  listIdentities(userId: string): Promise<IdentityRecord[]> {
    return this.deps.store.listIdentities(userId);
  }

  /** False when it is not one of the caller's; FORBIDDEN when it is the last way to sign in. */
  async unlink(userId: string, identityId: string, client: ClientInfo): Promise<boolean> {
    const result = await this.deps.store.unlinkIdentity(userId, identityId, this.deps.clock.now(), client);
    if (result === 'last_method') throw forbiddenBecause('LAST_SIGN_IN_METHOD');
    return result === 'unlinked';
  }

  private secret(): string {
    return this.random(32).toString('base64url');
  }

  private reasonOf(error: unknown): FlowErrorReason {
    if (error instanceof FlowError) return error.reason;
    if (error instanceof StoreUnavailableError) return 'temporarily_unavailable';
    this.deps.logger.error({ err: error }, 'identity flow failed');
    return 'provider_error';
  }
}

/** A new account from a provider: no password, its email verified only if the provider said so. */
function newFederatedUser(id: string, email: string, emailVerified: boolean, roles: string[], now: number): UserRecord {
  return { id, email, passwordHash: null, roles: [...roles], createdAt: now, emailVerified, disabled: false };
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

function withParams(uri: string, params: Record<string, string>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.href;
}

function errorRedirect(uri: string, reason: FlowErrorReason): FlowAnswer {
  return { kind: 'redirect', location: withParams(uri, { error: reason }) };
}
