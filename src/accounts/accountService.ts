import type { AuthService, ClientInfo, IssuedSession } from '../auth/authService.js';
import { PASSWORD_AUTH } from '../auth/authService.js';
import type { LoginThrottle } from '../auth/loginThrottle.js';
import type { Clock } from '../clock.js';
import type { AccountSettings } from '../config.js';
import { badUserInput, forbiddenBecause, rateLimited, TesseraError, unauthenticated } from '../errors.js';
import type { Mailer } from '../mail/types.js';
import { type Metrics, noMetrics } from '../observability/metrics.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { Store, UserRecord } from '../store/types.js';
import type { MailTokenCodec, MailTokenKind } from '../tokens/mailTokens.js';
import { checkSignupPassword, normalizeEmail, PASSWORD_MAX_BYTES, passwordBytes } from '../users/credentials.js';
import type { PasswordHasher } from '../users/passwords.js';
import { forgetAccountCounters, resetRequestsKey } from './counters.js';
import type { FreshAuthRule, FreshAuthSubject } from './freshAuth.js';

export interface AccountServiceDeps {
  store: Store;
  clock: Clock;
  auth: AuthService;
  passwords: PasswordHasher;
  mailer: Mailer;
  mailTokens: MailTokenCodec;
  revocations: RevocationFeed;
  throttle: LoginThrottle;
  freshAuth: FreshAuthRule;
  settings: AccountSettings;
  metrics?: Metrics;
}

/** The signed-in caller, as the resolvers know them (the verified access token). */
export interface AccountCaller extends FreshAuthSubject {
  id: string;
  sessionId: string;
}

/** Any bad mail token: spent, expired, superseded, forged, truncated, huge, of another kind. */
export function tokenInvalid(): TesseraError {
  return badUserInput('The link is invalid or has expired.', 'TOKEN_INVALID_OR_EXPIRED');
}

/** An id that no user of this store could have: an unknown email's request does a store step for it (and finds nobody). */
const NOBODY = 'AAAAAAAAAAAAAAAAAAAAAA';

/**
 * A user's own account flows (docs/contract.md section 7): password reset, email verification,
 * email change, re-authentication, password change, account deletion. The rules live here; each
 * change is one store step (src/accounts/store.ts) that records its events; sessions it ends go
 * on the revocation feed at once (every instance refuses their access tokens within 1 s).
 */
export class AccountService {
  private readonly metrics: Metrics;

  constructor(private readonly deps: AccountServiceDeps) {
    this.metrics = deps.metrics ?? noMetrics;
  }

  get settings(): AccountSettings {
    return this.deps.settings;
  }

  private requireMail(): void {
    if (!this.deps.mailer.enabled) throw forbiddenBecause('FEATURE_DISABLED');
  }

  private ended(ids: readonly string[], cause: 'password_reset' | 'all' | 'disabled' | 'deleted' | 'admin'): void {
    this.deps.revocations.noteRevoked(ids);
    if (ids.length > 0) this.metrics.sessionsRevoked(cause, ids.length);
  }

  private async loadUser(id: string): Promise<UserRecord> {
    const [user] = await this.deps.store.getUsers([id]);
    if (!user) throw unauthenticated('SESSION_REVOKED');
    return user;
  }

  /** A new token of the kind for the user, stored (the newest wins), and its mail queued. */
  private async sendToken(user: UserRecord, kind: MailTokenKind, to: string, client: ClientInfo, details?: Record<string, string>): Promise<void> {
    const { store, clock, mailTokens, mailer, settings } = this.deps;
    const { token, secretHash } = mailTokens.issue(kind, user.id);
    const ttlMs = kind === 'reset' ? settings.passwordResetTtlMs : settings.emailVerificationTtlMs;
    const stored = await store.issueMailToken({ userId: user.id, kind, secretHash, email: to, ttlMs, now: clock.now(), origin: client });
    if (!stored) return;
    const mailKind = kind === 'reset' ? 'password_reset' : kind === 'verify' ? 'email_verification' : 'email_change';
    mailer.send({ kind: mailKind, to, token, ...(details ? { details } : {}) });
  }

  /**
   * Always true (BAD_USER_INPUT only for what is not an email address). Known and unknown
   * addresses do the same work: the per-account counter, a token with its HMAC, one store step
   * (for nobody when unknown), so the answer takes about as long either way. Per account at most
   * PASSWORD_RESET_MAX_REQUESTS mails per window, silently; per client address RATE_LIMITED.
   */
  async requestPasswordReset(rawEmail: string, client: ClientInfo): Promise<boolean> {
    const { store, clock, mailTokens, settings } = this.deps;
    this.requireMail();
    const email = normalizeEmail(rawEmail);
    if (!email) throw badUserInput('Not a valid email address.');
    const now = clock.now();
    if (client.ipAddress !== null) {
      const byAddress = await store.increment(`password-reset:address:${client.ipAddress}`, settings.passwordResetWindowMs, now);
      if (byAddress.count > settings.passwordResetMaxRequestsPerAddress) {
        this.metrics.rateLimited('password_reset_address');
        throw rateLimited(Math.max(1, Math.ceil(byAddress.resetInMs / 1000)));
      }
    }
    const [user, perAccount] = await Promise.all([
      store.findUserByEmail(email),
      store.increment(resetRequestsKey(email), settings.passwordResetWindowMs, now),
    ]);
    // A disabled account gets no reset: it could not sign in with it anyway.
    if (user && !user.disabled && perAccount.count <= settings.passwordResetMaxRequests) {
      await this.sendToken(user, 'reset', user.email, client);
    } else {
      mailTokens.dummy();
      await store.issueMailToken({ userId: NOBODY, kind: 'reset', secretHash: 'none', email, ttlMs: 1, now, origin: client });
    }
    return true;
  }

  /**
   * Spends the reset token, sets the password (signup's rules), marks the email verified, ends
   * every session, forgets the failed logins, and starts a new session.
   */
  async resetPassword(rawToken: string, newPassword: string, client: ClientInfo): Promise<IssuedSession> {
    const { store, clock, mailTokens, passwords, throttle, auth } = this.deps;
    const token = mailTokens.decode(rawToken, 'reset');
    if (!token) throw tokenInvalid();
    checkNewPassword(newPassword);
    const [user] = await store.getUsers([token.userId]);
    if (!user) throw tokenInvalid();
    if (user.disabled) throw forbiddenBecause('ACCOUNT_DISABLED');
    const passwordHash = await passwords.hash(newPassword);
    const reset = await store.resetPassword({ userId: token.userId, secretHash: token.secretHash, now: clock.now(), origin: client }, passwordHash);
    if (!reset) throw tokenInvalid();
    this.ended(reset.revokedSessionIds, 'password_reset');
    await throttle.clearAccount(reset.user.email);
    return auth.startSession(reset.user, client, PASSWORD_AUTH);
  }

  /** Signed in: (re)sends the verification mail; true. Already verified: nothing sent, true. */
  async requestEmailVerification(caller: AccountCaller, client: ClientInfo): Promise<boolean> {
    if (this.deps.settings.emailVerification === 'off') throw forbiddenBecause('FEATURE_DISABLED');
    this.requireMail();
    const user = await this.loadUser(caller.id);
    if (!user.emailVerified) await this.sendToken(user, 'verify', user.email, client);
    return true;
  }

  /** After signup (EMAIL_VERIFICATION optional or required): the first verification mail. Never throws. */
  sendSignupVerification(user: UserRecord, client: ClientInfo): void {
    if (this.deps.settings.emailVerification === 'off' || !this.deps.mailer.enabled) return;
    this.sendToken(user, 'verify', user.email, client).catch(() => {
      // The account exists; the user can ask again (requestEmailVerification).
    });
  }

  async verifyEmail(rawToken: string, client: ClientInfo): Promise<UserRecord> {
    const token = this.deps.mailTokens.decode(rawToken, 'verify');
    if (!token) throw tokenInvalid();
    const user = await this.deps.store.verifyEmail({ userId: token.userId, secretHash: token.secretHash, now: this.deps.clock.now(), origin: client });
    if (!user) throw tokenInvalid();
    return user;
  }

  /**
   * `reauthenticate(password, code, passkeyResponse)`: the caller's password and/or a second
   * factor again (`proveFactor`, from src/factors/), in the same session: a new auth_time, and a
   * new token pair. amr is what was proven (`pwd`, `otp`, `hwk`/`swk`); two of them add `mfa` and
   * acr `aal2`, else `aal1`. The password is checked first, so a wrong one spends no code.
   */
  async reauthenticate(
    caller: AccountCaller,
    password: string | null,
    client: ClientInfo,
    proveFactor: (client: ClientInfo) => Promise<string[]> = async () => [],
  ): Promise<IssuedSession> {
    const { passwords, throttle, auth } = this.deps;
    if (password !== null && passwordBytes(password) > PASSWORD_MAX_BYTES) throw badUserInput(`The password must be at most ${PASSWORD_MAX_BYTES} bytes long.`);
    const user = await this.loadUser(caller.id);
    const amr: string[] = [];
    if (password !== null) {
      const limit = await throttle.beginAttempt(user.email, client.ipAddress);
      if (limit) throw rateLimited(limit.retryAfterSeconds);
      if (!(await passwords.verify(user.passwordHash, password))) throw unauthenticated('INVALID_CREDENTIALS');
      amr.push('pwd');
    }
    amr.push(...(await proveFactor(client)));
    if (amr.length === 0) throw badUserInput('reauthenticate needs a password, a code or a passkey response.');
    if (password !== null) await throttle.recordSuccess(user.email, client.ipAddress);
    const authentication = amr.length >= 2 ? { amr: [...amr, 'mfa'], acr: 'aal2' as const } : { amr, acr: 'aal1' as const };
    return auth.reauthenticate(user, caller.sessionId, amr.length === 1 && amr[0] === 'pwd' ? PASSWORD_AUTH : authentication);
  }

  /** Fresh auth; signup's rules; every other session ends; a `password_changed` notice. */
  async changePassword(caller: AccountCaller, newPassword: string, client: ClientInfo): Promise<boolean> {
    const { store, clock, passwords, mailer, freshAuth } = this.deps;
    freshAuth.require(caller);
    checkNewPassword(newPassword);
    const passwordHash = await passwords.hash(newPassword);
    const changed = await store.changePassword(caller.id, passwordHash, caller.sessionId, clock.now(), client);
    if (!changed) throw unauthenticated('SESSION_REVOKED');
    this.ended(changed.revokedSessionIds, 'all');
    if (mailer.enabled) mailer.send({ kind: 'password_changed', to: changed.user.email, token: null });
    return true;
  }

  /**
   * Fresh auth. The confirmation goes to the new address, a notice to the old one. An address
   * another account has gets the same answer and the same notice, but no mail (no enumeration).
   */
  async requestEmailChange(caller: AccountCaller, rawEmail: string, client: ClientInfo): Promise<boolean> {
    const { store, freshAuth, mailer } = this.deps;
    freshAuth.require(caller);
    this.requireMail();
    const email = normalizeEmail(rawEmail);
    if (!email) throw badUserInput('Not a valid email address.');
    const user = await this.loadUser(caller.id);
    if (email === user.email) throw badUserInput('This is already the address of the account.');
    const holder = await store.findUserByEmail(email);
    if (!holder) await this.sendToken(user, 'change', email, client, { newEmail: email });
    mailer.send({ kind: 'email_change', to: user.email, token: null, details: { newEmail: email } });
    return true;
  }

  async confirmEmailChange(rawToken: string, client: ClientInfo): Promise<UserRecord> {
    const token = this.deps.mailTokens.decode(rawToken, 'change');
    if (!token) throw tokenInvalid();
    const changed = await this.deps.store.changeEmail({ userId: token.userId, secretHash: token.secretHash, now: this.deps.clock.now(), origin: client });
    // An address taken since the request: the link no longer works (the same answer as any bad link).
    if (changed === 'invalid' || changed === 'taken') throw tokenInvalid();
    return changed.user;
  }

  /** Fresh auth; refused for the last enabled admin (AdminService.guardLastAdmin). */
  async deleteAccount(caller: AccountCaller & { roles: readonly string[] }, client: ClientInfo, guard: (userId: string) => Promise<void>): Promise<boolean> {
    this.deps.freshAuth.require(caller);
    await guard(caller.id);
    const deleted = await this.deps.store.deleteUser(caller.id, this.deps.clock.now(), client);
    if (!deleted) throw unauthenticated('SESSION_REVOKED');
    this.ended(deleted.revokedSessionIds, 'deleted');
    await forgetAccountCounters(this.deps.store, deleted.email);
    return true;
  }

  /** NOTIFY_NEW_SIGN_IN: a `new_sign_in` notice after a password login. Never throws. */
  notifySignIn(user: UserRecord, client: ClientInfo): void {
    if (!this.deps.settings.notifyNewSignIn || !this.deps.mailer.enabled) return;
    this.deps.mailer.send({
      kind: 'new_sign_in',
      to: user.email,
      token: null,
      details: { time: new Date(this.deps.clock.now()).toISOString(), ip: client.ipAddress ?? '', userAgent: client.userAgent ?? '' },
    });
  }
}

/** A new password follows signup's rules. */
function checkNewPassword(password: string): void {
  const strength = checkSignupPassword(password);
  if (strength === 'too_short') throw badUserInput('The password must be at least 8 bytes long.');
  if (strength === 'too_long') throw badUserInput(`The password must be at most ${PASSWORD_MAX_BYTES} bytes long.`);
}
