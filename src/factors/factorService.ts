import type { AuthService, ClientInfo, IssuedSession } from '../auth/authService.js';
import type { LoginThrottle } from '../auth/loginThrottle.js';
import type { Clock } from '../clock.js';
import { badUserInput, ErrorCode, rateLimited, type TesseraError, withReason } from '../errors.js';
import { ID_PATTERN, newId } from '../ids.js';
import { type MfaFactor, type Metrics, noMetrics } from '../observability/metrics.js';
import type { Store, UserRecord } from '../store/types.js';
import { parseMfaToken, type MfaTokenParts } from './mfaTokens.js';
import {
  amrOfPasskey,
  authenticationOptions,
  type CredentialJson,
  parseCredential,
  registrationOptions,
  type RelyingParty,
  userIdOfHandle,
  verifyAssertion,
  verifyRegistration,
} from './passkeys/webauthn.js';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from './recovery-codes/recoveryCodes.js';
import type { FactorRecord, FactorUse } from './store.js';
import { isTotpCode, matchTotpStep, newTotpEnrollment, type TotpEnrollmentData } from './totp/totp.js';

/** A TOTP enrolment waits this long for its first code. */
export const PENDING_TOTP_TTL_MS = 15 * 60_000;
/** WebAuthn challenges: single use, and this short-lived. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** How the user proved who they are: RFC 8176 `amr` values and the NIST assurance level. */
export interface Authentication {
  amr: string[];
  acr: 'aal1' | 'aal2';
}

/** The signed-in caller a factor operation acts for. */
export interface FactorCaller {
  id: string;
  sessionId: string;
}

export interface FactorServiceDeps {
  store: Store;
  clock: Clock;
  auth: AuthService;
  throttle: LoginThrottle;
  rp: RelyingParty;
  /** The TOTP `issuer` shown in authenticator apps (AUTH_ISSUER's host). */
  totpIssuer: string;
  metrics?: Metrics;
}

export interface EnrolledTotp extends TotpEnrollmentData {
  factorId: string;
}

/** A code as typed: a TOTP code, a recovery code, or neither (BAD_USER_INPUT). */
type ParsedCode = { kind: 'totp'; code: string } | { kind: 'recovery_code'; hash: string };

const MAX_CODE_CHARS = 64;
const MAX_NAME_CHARS = 64;

/**
 * Second factors and the MFA step of sign-in (docs/contract.md section 8). Resolvers parse and
 * call it; the store applies each change in one atomic step. A failed factor attempt counts as a
 * failed login of the account (LoginThrottle), so a second factor is never a faster way to guess.
 */
export class FactorService {
  private readonly metrics: Metrics;

  constructor(private readonly deps: FactorServiceDeps) {
    this.metrics = deps.metrics ?? noMetrics;
  }

  list(userId: string): Promise<FactorRecord[]> {
    return this.deps.store.listFactors(userId).then((f) => f.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)));
  }

  private async user(userId: string): Promise<UserRecord> {
    const [user] = await this.deps.store.getUsers([userId]);
    if (!user) throw withReason(ErrorCode.UNAUTHENTICATED, 'SESSION_REVOKED');
    return user;
  }

  // Enrolment (the caller's fresh authentication is checked by the resolvers)

  async enrollTotp(caller: FactorCaller): Promise<EnrolledTotp> {
    const user = await this.user(caller.id);
    const enrollment = await newTotpEnrollment(this.deps.totpIssuer, user.email);
    const factorId = newId();
    await this.deps.store.putPendingTotp(
      { userId: caller.id, factorId, secret: enrollment.secret, createdAt: this.deps.clock.now() },
      PENDING_TOTP_TTL_MS,
    );
    return { factorId, ...enrollment };
  }

  /** Activates the enrolment with its first code; returns the 10 recovery codes (shown once). */
  async confirmTotp(caller: FactorCaller, factorId: string, code: string, client: ClientInfo): Promise<string[]> {
    const { store, clock } = this.deps;
    if (typeof code !== 'string' || code.length > MAX_CODE_CHARS || !isTotpCode(code)) throw withReason(ErrorCode.BAD_USER_INPUT, 'MFA_CODE_MALFORMED');
    const now = clock.now();
    const pending = typeof factorId === 'string' && factorId.length <= 64 ? await store.getPendingTotp(caller.id, factorId, now).catch(notFound) : null;
    if (!pending) throw withReason(ErrorCode.BAD_USER_INPUT, 'FACTOR_NOT_FOUND');
    const step = matchTotpStep(pending.secret, code, now);
    if (step === null) {
      this.metrics.mfaAttempt('totp', 'failure');
      throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_CODE_INVALID');
    }
    const codes = newRecoveryCodes();
    const factor = await store.activateTotp({
      userId: caller.id,
      factorId,
      step,
      recoveryCodeHashes: codes.map((c) => hashRecoveryCode(normalizeRecoveryCode(c)!)),
      now,
      origin: client,
    });
    if (!factor) throw withReason(ErrorCode.BAD_USER_INPUT, 'FACTOR_NOT_FOUND');
    this.metrics.mfaAttempt('totp', 'success');
    return codes;
  }

  async startPasskeyRegistration(caller: FactorCaller): Promise<unknown> {
    const user = await this.user(caller.id);
    const options = await registrationOptions(this.deps.rp, user, await this.deps.store.listFactors(caller.id));
    await this.deps.store.putChallenge({ userId: caller.id, purpose: 'register', challenge: options.challenge }, this.deps.clock.now(), CHALLENGE_TTL_MS);
    return options;
  }

  async finishPasskeyRegistration(caller: FactorCaller, response: unknown, name: string | null | undefined, client: ClientInfo): Promise<FactorRecord> {
    const { store, clock, rp } = this.deps;
    if (name != null && (typeof name !== 'string' || name.length > MAX_NAME_CHARS || /\p{Cc}/u.test(name))) {
      throw badUserInput(`A passkey's name is at most ${MAX_NAME_CHARS} characters, without control characters.`);
    }
    const { credential, challenge } = parseCredential(response, 'registration');
    const now = clock.now();
    if (!(await store.takeChallenge({ userId: caller.id, purpose: 'register', challenge }, now))) {
      throw withReason(ErrorCode.BAD_USER_INPUT, 'PASSKEY_INVALID');
    }
    const { passkey, counter } = await verifyRegistration(rp, credential, challenge);
    const factor: FactorRecord = {
      id: newId(),
      userId: caller.id,
      kind: 'passkey',
      name: name?.trim() || null,
      createdAt: now,
      lastUsedAt: null,
      counter,
      passkey,
    };
    if ((await store.addPasskey(factor, client)) === 'duplicate') throw withReason(ErrorCode.BAD_USER_INPUT, 'PASSKEY_INVALID');
    return factor;
  }

  async removeFactor(caller: FactorCaller, factorId: string, client: ClientInfo): Promise<boolean> {
    if (typeof factorId !== 'string' || factorId.length > 64) return false;
    return (await this.deps.store.removeFactor(caller.id, factorId, this.deps.clock.now(), client).catch(notFound)) !== null;
  }

  async regenerateRecoveryCodes(caller: FactorCaller, client: ClientInfo): Promise<string[]> {
    const { store, clock } = this.deps;
    if ((await store.listFactors(caller.id)).length === 0) {
      throw badUserInput('Recovery codes are for an account with a second factor: enrol one first.');
    }
    const codes = newRecoveryCodes();
    await store.replaceRecoveryCodes(caller.id, codes.map((c) => hashRecoveryCode(normalizeRecoveryCode(c)!)), clock.now(), client);
    return codes;
  }

  // The MFA step of sign-in

  /** verifyMfa: a TOTP or recovery code for the ticket of `mfaToken`. */
  async verifyMfa(mfaToken: string, code: string, client: ClientInfo): Promise<IssuedSession> {
    const parsed = parseCode(code);
    const { user, ticket } = await this.beginAttempt(mfaToken, client);
    const factors = await this.deps.store.listFactors(user.id);
    const use = this.codeUse(parsed, factors);
    const factor: MfaFactor = parsed.kind;
    if (!use) return this.failed(user, factor, client);
    const result = await this.deps.store.completeMfa(user.id, ticket.tokenHash, use, this.deps.clock.now());
    if (result === 'token_invalid') throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    if (result === 'code_invalid') return this.failed(user, factor, client);
    this.metrics.mfaAttempt(factor, 'success');
    return this.deps.auth.signInWithFactor(user, client, { amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' });
  }

  private codeUse(parsed: ParsedCode, factors: readonly FactorRecord[]): FactorUse | null {
    if (parsed.kind === 'recovery_code') return { kind: 'recovery_code', codeHash: parsed.hash };
    const now = this.deps.clock.now();
    for (const factor of factors) {
      if (factor.kind !== 'totp' || !factor.secret) continue;
      const step = matchTotpStep(factor.secret, parsed.code, now);
      // A step at or before the last accepted one is a replay: refused here and by the store.
      if (step !== null && step > factor.counter) return { kind: 'totp', factorId: factor.id, step };
    }
    return null;
  }

  /**
   * The ticket, one attempt counted on it and one failed login counted on the account, before
   * the code is checked: parallel guesses cannot pass either limit.
   */
  private async beginAttempt(mfaToken: string, client: ClientInfo): Promise<{ user: UserRecord; ticket: MfaTokenParts }> {
    const ticket = parseMfaToken(mfaToken);
    if (!ticket) throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    const { store, clock } = this.deps;
    if (!(await store.beginMfaAttempt(ticket.userId, ticket.tokenHash, clock.now()))) {
      throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    }
    const [user] = await store.getUsers([ticket.userId]);
    if (!user) throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    await this.countAgainstLimit(user, client);
    return { user, ticket };
  }

  private async countAgainstLimit(user: UserRecord, client: ClientInfo): Promise<void> {
    const limit = await this.deps.throttle.beginAttempt(user.email, client.ipAddress);
    if (limit) throw this.rateLimited(limit.retryAfterSeconds);
  }

  private rateLimited(retryAfterSeconds: number): TesseraError {
    return rateLimited(retryAfterSeconds);
  }

  /** A factor that did not prove: counted, recorded (`mfa.failed`), refused. */
  private async failed(user: UserRecord, factor: MfaFactor, client: ClientInfo, reason: 'MFA_CODE_INVALID' | 'PASSKEY_INVALID' = 'MFA_CODE_INVALID'): Promise<never> {
    this.metrics.mfaAttempt(factor, 'failure');
    await this.deps.store.appendEvent({
      type: 'mfa.failed',
      time: this.deps.clock.now(),
      userId: user.id,
      sessionId: null,
      origin: client,
      details: { factor: factor === 'webauthn' ? 'passkey' : factor },
    });
    throw withReason(ErrorCode.UNAUTHENTICATED, reason);
  }

  /** startPasskeyChallenge: with an mfaToken, the second factor of that sign-in; without, a passwordless sign-in (discoverable credential, UV required). */
  async startPasskeyChallenge(mfaToken: string | null | undefined): Promise<unknown> {
    const { store, clock, rp } = this.deps;
    if (mfaToken == null) {
      const options = await authenticationOptions(rp, null, 'required');
      await store.putChallenge({ userId: null, purpose: 'passwordless', challenge: options.challenge }, clock.now(), CHALLENGE_TTL_MS);
      return options;
    }
    const ticket = parseMfaToken(mfaToken);
    if (!ticket) throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    const passkeys = (await store.listFactors(ticket.userId)).filter((f) => f.kind === 'passkey');
    if (passkeys.length === 0) throw withReason(ErrorCode.UNAUTHENTICATED, 'PASSKEY_INVALID');
    const options = await authenticationOptions(rp, passkeys, 'preferred');
    await store.putChallenge({ userId: ticket.userId, purpose: mfaPurpose(ticket), challenge: options.challenge }, clock.now(), CHALLENGE_TTL_MS);
    return options;
  }

  async finishPasskeyChallenge(mfaToken: string | null | undefined, response: unknown, client: ClientInfo): Promise<IssuedSession> {
    const { credential, challenge } = parseCredential(response, 'authentication');
    if (mfaToken == null) return this.passwordless(credential, challenge, client);
    const { user, ticket } = await this.beginAttempt(mfaToken, client);
    const { store, clock } = this.deps;
    if (!(await store.takeChallenge({ userId: user.id, purpose: mfaPurpose(ticket), challenge }, clock.now()))) {
      return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
    }
    const factor = await this.passkeyOf(user.id, credential);
    const counter = factor && (await verifyAssertion(this.deps.rp, credential, challenge, factor, false));
    if (!factor || counter == null) return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
    const result = await store.completeMfa(user.id, ticket.tokenHash, { kind: 'passkey', factorId: factor.id, counter }, clock.now());
    if (result === 'token_invalid') throw withReason(ErrorCode.UNAUTHENTICATED, 'MFA_TOKEN_INVALID');
    if (result === 'code_invalid') return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
    this.metrics.mfaAttempt('webauthn', 'success');
    return this.deps.auth.signInWithFactor(user, client, { amr: ['pwd', amrOfPasskey(factor.passkey!), 'mfa'], acr: 'aal2' });
  }

  private async passwordless(credential: CredentialJson, challenge: string, client: ClientInfo): Promise<IssuedSession> {
    const { store, clock, rp } = this.deps;
    if (!(await store.takeChallenge({ userId: null, purpose: 'passwordless', challenge }, clock.now()))) {
      throw withReason(ErrorCode.UNAUTHENTICATED, 'PASSKEY_INVALID');
    }
    const userId = userIdOfHandle(credential);
    const [user] = userId && ID_PATTERN.test(userId) ? await store.getUsers([userId]) : [null];
    if (!user) throw withReason(ErrorCode.UNAUTHENTICATED, 'PASSKEY_INVALID');
    await this.countAgainstLimit(user, client);
    const factor = await this.passkeyOf(user.id, credential);
    const counter = factor && (await verifyAssertion(rp, credential, challenge, factor, true));
    if (!factor || counter == null) return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
    if (!(await store.useFactor(user.id, { kind: 'passkey', factorId: factor.id, counter }, clock.now()))) {
      return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
    }
    this.metrics.mfaAttempt('webauthn', 'success');
    // A passkey with user verification is two factors in one (possession, and a PIN or biometric).
    return this.deps.auth.signInWithFactor(user, client, { amr: [amrOfPasskey(factor.passkey!), 'mfa'], acr: 'aal2' });
  }

  /**
   * `reauthenticate(code:, passkeyResponse:)`: proves a second factor again in the caller's own
   * session, and answers the `amr` values it adds (`otp`, `hwk`/`swk`). A code is checked as at
   * sign-in (a TOTP step once, a recovery code once); a passkey answers a challenge of
   * startPasskeyChallenge (without mfaToken) with one of the caller's own credentials. Failures
   * count toward the account's login limit and are recorded (`mfa.failed`).
   */
  async proveAgain(caller: FactorCaller, proof: { code?: string | null; passkeyResponse?: unknown }, client: ClientInfo): Promise<string[]> {
    const { store, clock, rp } = this.deps;
    const parsedCode = proof.code != null ? parseCode(proof.code) : null;
    const assertion = proof.passkeyResponse != null ? parseCredential(proof.passkeyResponse, 'authentication') : null;
    const user = await this.user(caller.id);
    if (!parsedCode && !assertion) return [];
    await this.countAgainstLimit(user, client);
    const amr: string[] = [];
    if (parsedCode) {
      const use = this.codeUse(parsedCode, await store.listFactors(user.id));
      if (!use || !(await store.useFactor(user.id, use, clock.now()))) return this.failed(user, parsedCode.kind, client);
      this.metrics.mfaAttempt(parsedCode.kind, 'success');
      amr.push('otp');
    }
    if (assertion) {
      const { credential, challenge } = assertion;
      const taken = await store.takeChallenge({ userId: null, purpose: 'passwordless', challenge }, clock.now());
      const factor = taken ? await this.passkeyOf(user.id, credential) : null;
      const counter = factor && (await verifyAssertion(rp, credential, challenge, factor, false));
      if (!factor || counter == null || !(await store.useFactor(user.id, { kind: 'passkey', factorId: factor.id, counter }, clock.now()))) {
        return this.failed(user, 'webauthn', client, 'PASSKEY_INVALID');
      }
      this.metrics.mfaAttempt('webauthn', 'success');
      amr.push(amrOfPasskey(factor.passkey!));
    }
    return amr;
  }

  private async passkeyOf(userId: string, credential: CredentialJson): Promise<FactorRecord | null> {
    const factors = await this.deps.store.listFactors(userId);
    return factors.find((f) => f.kind === 'passkey' && f.passkey?.credentialId === credential.id) ?? null;
  }
}

/** The purpose of a second-factor challenge: bound to its ticket, not just its user. */
function mfaPurpose(ticket: MfaTokenParts): string {
  return `mfa:${ticket.tokenHash.slice(0, 32)}`;
}

function parseCode(code: unknown): ParsedCode {
  if (typeof code === 'string' && code.length <= MAX_CODE_CHARS) {
    if (isTotpCode(code)) return { kind: 'totp', code };
    const recovery = normalizeRecoveryCode(code);
    if (recovery) return { kind: 'recovery_code', hash: hashRecoveryCode(recovery) };
  }
  throw withReason(ErrorCode.BAD_USER_INPUT, 'MFA_CODE_MALFORMED');
}

/** An id the store refuses to put in a key (not one of ours) is simply not found. */
function notFound(error: unknown): null {
  if (error instanceof RangeError) return null;
  throw error;
}
