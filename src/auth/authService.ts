import type { Clock } from '../clock.js';
import { badUserInput, forbidden, forbiddenBecause, rateLimited, unauthenticated } from '../errors.js';
import type { EventOrigin } from '../events/types.js';
import { newId } from '../ids.js';
import { type Metrics, noMetrics } from '../observability/metrics.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { AssuranceLevel, SessionRecord, SessionRef, Store, UserRecord } from '../store/types.js';
import type { AccessTokenService } from '../tokens/accessTokens.js';
import {
  hashSecret,
  openSuccessor,
  type RefreshTokenCodec,
  type RefreshTokenParts,
  sealSuccessor,
} from '../tokens/refreshTokens.js';
import type { IssuedAccessToken } from '../tokens/types.js';
import { checkSignupPassword, normalizeEmail, PASSWORD_MAX_BYTES, passwordBytes } from '../users/credentials.js';
import type { PasswordHasher } from '../users/passwords.js';
import type { LimitReached, LoginThrottle } from './loginThrottle.js';
import type { SecondFactorGate } from './secondFactor.js';

export interface AuthPolicy {
  signupEnabled: boolean;
  refreshTokenTtlMs: number;
  sessionMaxLifetimeMs: number;
  /** Live sessions per user; the oldest end when a new one would pass it. */
  maxSessionsPerUser: number;
  refreshReuseGraceMs: number;
  defaultRoles: string[];
}

export interface AuthServiceDeps {
  store: Store;
  clock: Clock;
  accessTokens: AccessTokenService;
  refreshTokens: RefreshTokenCodec;
  passwords: PasswordHasher;
  throttle: LoginThrottle;
  revocations: RevocationFeed;
  policy: AuthPolicy;
  newId?: () => string;
  /** Counters of logins, refreshes and revocations, incremented where each is decided. */
  metrics?: Metrics;
  /** The MFA step of login (src/factors/); none: a password is enough. */
  secondFactor?: SecondFactorGate;
  hooks?: AuthHooks;
}

/** Who is asking: for the session record, and the security events the request causes. */
export type ClientInfo = EventOrigin;

/**
 * How the user proved who they are when a session starts (or re-authenticates): RFC 8176 `amr`
 * values and the `acr`; `authTime` defaults to now. A password login is `PASSWORD_AUTH`; second
 * factors and identity providers pass their own (`['pwd', 'otp', 'mfa']` / `aal2`, `['fed']` …).
 */
export interface SessionAuthInput {
  amr: readonly string[];
  acr: AssuranceLevel;
  /** Epoch ms; default: the clock's now. */
  authTime?: number;
}

export const PASSWORD_AUTH: SessionAuthInput = Object.freeze({ amr: Object.freeze(['pwd']), acr: 'aal1' });

/** Told of what the session rules did, for the account features built on them (mail notices). */
export interface AuthHooks {
  /** A new account (signup): e.g. send the verification mail. Must not throw. */
  onSignedUp?(user: UserRecord, client: ClientInfo): void;
  /** A password login succeeded: e.g. NOTIFY_NEW_SIGN_IN. Must not throw. */
  onSignedIn?(user: UserRecord, session: SessionRecord, client: ClientInfo): void;
}

/** What login, signup and refresh hand back: a session with a fresh token pair. */
export interface IssuedSession {
  user: UserRecord;
  session: SessionRecord;
  access: IssuedAccessToken;
  refreshToken: string;
  /** Epoch ms: when the refresh token stops working if not used (= the session's idle expiry). */
  refreshTokenExpiresAt: number;
}

/** The rules of signing in, refreshing and signing out. Resolvers only parse and call it. */
export class AuthService {
  private readonly newId: () => string;
  private readonly metrics: Metrics;

  constructor(private readonly deps: AuthServiceDeps) {
    this.newId = deps.newId ?? (() => newId());
    this.metrics = deps.metrics ?? noMetrics;
  }

  async signup(rawEmail: string, password: string, client: ClientInfo): Promise<IssuedSession> {
    const { store, clock, passwords, policy } = this.deps;
    if (!policy.signupEnabled) throw forbidden('Sign-up is disabled.');
    const email = requireEmail(rawEmail);
    const strength = checkSignupPassword(password);
    if (strength === 'too_short') throw badUserInput('The password must be at least 8 bytes long.');
    if (strength === 'too_long') throw badUserInput(`The password must be at most ${PASSWORD_MAX_BYTES} bytes long.`);
    const user: UserRecord = {
      id: this.newId(),
      email,
      passwordHash: await passwords.hash(password),
      roles: [...policy.defaultRoles],
      createdAt: clock.now(),
      emailVerified: false,
      disabled: false,
    };
    if ((await store.createUser(user, client)) === 'email_taken') throw badUserInput('This email is already registered.');
    const issued = await this.startSession(user, client, PASSWORD_AUTH);
    this.deps.hooks?.onSignedUp?.(user, client);
    return issued;
  }

  async login(rawEmail: string, password: string, client: ClientInfo): Promise<IssuedSession> {
    const { store, passwords, throttle } = this.deps;
    if (passwordBytes(password) > PASSWORD_MAX_BYTES) {
      throw badUserInput(`The password must be at most ${PASSWORD_MAX_BYTES} bytes long.`);
    }
    const email = requireEmail(rawEmail);
    const limit = await throttle.beginAttempt(email, client.ipAddress);
    if (limit) {
      if (limit.first) await this.recordRateLimited(email, limit, client);
      throw rateLimited(limit.retryAfterSeconds);
    }
    const user = await store.findUserByEmail(email);
    const ok = await passwords.verify(user?.passwordHash ?? null, password);
    if (!user || !ok) {
      this.metrics.login('invalid_credentials');
      // The user sees their own failed logins; one for an unknown email is in the audit log only.
      await store.appendEvent({
        type: 'login.failed',
        time: this.deps.clock.now(),
        userId: user?.id ?? null,
        sessionId: null,
        origin: client,
        details: { reason: user ? 'wrong_password' : 'unknown_email' },
      });
      throw unauthenticated('INVALID_CREDENTIALS');
    }
    // A disabled account learns so (below) before any second factor is asked for.
    const mfa = user.disabled ? null : await this.deps.secondFactor?.challenge(user, client);
    if (mfa) {
      // A correct password: its own attempt is taken back, but the account's failures stay
      // counted until the second factor is proven too (so factor guesses add up against the limit).
      await throttle.takeBack(email, client.ipAddress);
      this.metrics.login('mfa_required');
      throw mfa;
    }
    await throttle.recordSuccess(email, client.ipAddress);
    if (user.disabled) {
      // Only a correct password learns that the account is disabled; a wrong one fails as usual.
      this.metrics.login('disabled');
      throw forbiddenBecause('ACCOUNT_DISABLED');
    }
    const issued = await this.startSession(user, client, PASSWORD_AUTH);
    this.metrics.login('success');
    this.deps.hooks?.onSignedIn?.(user, issued.session, client);
    return issued;
  }

  /**
   * A sign-in whose second factor (or passkey) has just been proven by src/factors/: clears the
   * account's failed attempts and starts the session.
   */
  async signInWithFactor(user: UserRecord, client: ClientInfo, auth: SessionAuthInput): Promise<IssuedSession> {
    if (user.disabled) throw forbiddenBecause('ACCOUNT_DISABLED');
    await this.deps.throttle.recordSuccess(user.email, client.ipAddress);
    const issued = await this.startSession(user, client, auth);
    this.metrics.login('success');
    this.deps.hooks?.onSignedIn?.(user, issued.session, client);
    return issued;
  }

  /** `login.rate_limited`, once per limit and window (its first refusal); the account's own when it is the account limit. */
  private async recordRateLimited(email: string, limit: LimitReached, client: ClientInfo): Promise<void> {
    const { store, clock } = this.deps;
    const user = limit.limit === 'account' ? await store.findUserByEmail(email) : null;
    await store.appendEvent({
      type: 'login.rate_limited',
      time: clock.now(),
      userId: user?.id ?? null,
      sessionId: null,
      origin: client,
      details: { limit: limit.limit, retryAfter: limit.retryAfterSeconds },
    });
  }

  /**
   * Starts a session for a user whose credentials were just proven (`auth` says how), and issues
   * its first token pair. Login and signup call it with PASSWORD_AUTH; a reset, a second factor or
   * an identity provider with their own.
   */
  async startSession(user: UserRecord, client: ClientInfo, auth: SessionAuthInput): Promise<IssuedSession> {
    const { store, clock, refreshTokens, policy } = this.deps;
    const secret = refreshTokens.newSecret();
    const now = clock.now();
    const session = await store.createSession({
      userId: user.id,
      sessionId: this.newId(),
      secretHash: hashSecret(secret),
      now,
      idleTtlMs: policy.refreshTokenTtlMs,
      absoluteTtlMs: policy.sessionMaxLifetimeMs,
      userAgent: client.userAgent,
      ipAddress: client.ipAddress,
      maxSessions: policy.maxSessionsPerUser,
      origin: client,
      auth: { authTime: auth.authTime ?? now, amr: [...auth.amr], acr: auth.acr },
    });
    return this.issue(user, session, secret);
  }

  /**
   * The caller proved a credential again in their session (`reauthenticate`; a second factor):
   * the session's auth_time (and amr, acr) renewed in one store step, and a new token pair for
   * the same session (the refresh token held before stops working). UNAUTHENTICATED
   * SESSION_REVOKED when the session is no longer live.
   */
  async reauthenticate(user: UserRecord, sessionId: string, auth: SessionAuthInput): Promise<IssuedSession> {
    const { store, clock, refreshTokens } = this.deps;
    const secret = refreshTokens.newSecret();
    const now = clock.now();
    const session = await store.reauthenticateSession({
      userId: user.id,
      sessionId,
      now,
      auth: { authTime: auth.authTime ?? now, amr: [...auth.amr], acr: auth.acr },
      nextSecretHash: hashSecret(secret),
    });
    if (!session) throw unauthenticated('SESSION_REVOKED');
    return this.issue(user, session, secret);
  }

  /** load → validate → rotate → issue. */
  async refresh(presented: string | null | undefined, client: ClientInfo): Promise<IssuedSession> {
    const { refreshTokens } = this.deps;
    const token = refreshTokens.decode(presented);
    if (!token) {
      this.metrics.refresh('invalid');
      throw unauthenticated('REFRESH_TOKEN_INVALID');
    }
    const { session, secret, user } = await this.rotate(token, client);
    // A deleted or disabled account's sessions were ended when it was; this refuses a refresh
    // that raced that step. The roles and email_verified come from the record read in the step.
    if (!user || user.disabled) throw unauthenticated('REFRESH_TOKEN_INVALID');
    return this.issue(user, session, secret);
  }

  private async rotate(
    token: RefreshTokenParts,
    client: ClientInfo,
  ): Promise<{ session: SessionRecord; secret: Buffer; user: UserRecord | null }> {
    const { store, clock, refreshTokens, policy, revocations } = this.deps;
    const successor = refreshTokens.newSecret();
    const result = await store.rotateSession({
      userId: token.userId,
      sessionId: token.sessionId,
      generation: token.generation,
      secretHash: hashSecret(token.secret),
      nextSecretHash: hashSecret(successor),
      sealedSuccessor: sealSuccessor(token.secret, successor),
      now: clock.now(),
      idleTtlMs: policy.refreshTokenTtlMs,
      graceMs: policy.refreshReuseGraceMs,
      origin: client,
    });
    this.metrics.refresh(result.status);
    switch (result.status) {
      case 'rotated':
        return { session: result.session, secret: successor, user: result.user };
      case 'grace': {
        const live = openSuccessor(token.secret, result.sealedSuccessor);
        if (!live) throw unauthenticated('REFRESH_TOKEN_INVALID');
        return { session: result.session, secret: live, user: result.user };
      }
      case 'reused':
        revocations.noteRevoked([token.sessionId]);
        this.metrics.sessionsRevoked('reuse');
        throw unauthenticated('REFRESH_TOKEN_REUSED');
      case 'expired':
        throw unauthenticated('REFRESH_TOKEN_EXPIRED');
      case 'invalid':
        throw unauthenticated('REFRESH_TOKEN_INVALID');
    }
  }

  private async issue(user: UserRecord, session: SessionRecord, secret: Buffer): Promise<IssuedSession> {
    const access = await this.deps.accessTokens.issue({
      userId: user.id,
      sessionId: session.id,
      roles: user.roles,
      notAfter: session.absoluteExpiresAt,
      authTime: session.authTime,
      emailVerified: user.emailVerified,
      amr: session.amr,
      acr: session.acr,
    });
    const refreshToken = this.deps.refreshTokens.encode({
      userId: user.id,
      sessionId: session.id,
      generation: session.generation,
      secret,
    });
    return { user, session, access, refreshToken, refreshTokenExpiresAt: session.expiresAt };
  }

  /** Ends one session of the user; false when it is not one of theirs (or already ended). */
  async revokeSession(ref: SessionRef, client: ClientInfo): Promise<boolean> {
    const revoked = await this.deps.store.revokeSession(ref, this.deps.clock.now(), { origin: client, cause: 'logout' });
    if (revoked) this.deps.revocations.noteRevoked([ref.sessionId]);
    if (revoked) this.metrics.sessionsRevoked('logout');
    return revoked;
  }

  /**
   * Logout with a refresh token (the cookie of a browser whose access token expired): ends its
   * session if the token is the live one or its immediate predecessor; otherwise nothing.
   */
  async revokeSessionWithRefreshToken(presented: string, client: ClientInfo): Promise<boolean> {
    const token = this.deps.refreshTokens.decode(presented);
    if (!token) return false;
    const revoked = await this.deps.store.revokeSessionWithToken(
      { userId: token.userId, sessionId: token.sessionId, generation: token.generation, secretHash: hashSecret(token.secret) },
      this.deps.clock.now(),
      client,
    );
    if (revoked) this.deps.revocations.noteRevoked([token.sessionId]);
    if (revoked) this.metrics.sessionsRevoked('logout');
    return revoked;
  }

  /** Ends every session of the user; returns how many ended. */
  async revokeAllSessions(userId: string, client: ClientInfo): Promise<number> {
    const ids = await this.deps.store.revokeAllSessions(userId, this.deps.clock.now(), { origin: client, cause: 'all' });
    this.deps.revocations.noteRevoked(ids);
    this.metrics.sessionsRevoked('all', ids.length);
    return ids.length;
  }

  /** The user's live sessions, newest first. */
  async listSessions(userId: string): Promise<SessionRecord[]> {
    const sessions = await this.deps.store.listSessions(userId, this.deps.clock.now());
    return sessions.sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id));
  }
}

function requireEmail(raw: string): string {
  const email = normalizeEmail(raw);
  if (!email) throw badUserInput('Not a valid email address.');
  return email;
}
