import type { SecondFactorGate } from '../auth/secondFactor.js';
import type { Clock } from '../clock.js';
import { ErrorCode, type TesseraError, withReason } from '../errors.js';
import type { EventOrigin } from '../events/types.js';
import type { UserRecord } from '../store/types.js';
import { newMfaToken } from './mfaTokens.js';
import type { FactorStore } from './store.js';

/** docs/contract.md section 8: an `mfaToken` is single use, lives 5 minutes, and allows 5 attempts. */
export const MFA_TOKEN_TTL_MS = 5 * 60_000;
export const MFA_MAX_ATTEMPTS = 5;

/**
 * The MFA step of login: after a correct password, a user with an active factor gets no session
 * but `UNAUTHENTICATED` `MFA_REQUIRED` with `extensions.mfaToken` (a ticket kept in the store)
 * and `extensions.factors`, the kinds that can finish it.
 */
export class MfaGate implements SecondFactorGate {
  constructor(
    private readonly store: FactorStore,
    private readonly clock: Clock,
  ) {}

  async challenge(user: UserRecord, _client: EventOrigin): Promise<TesseraError | null> {
    // One read for the common case (no factor); the recovery codes are counted only for those who have one.
    const factors = await this.store.listFactors(user.id);
    if (factors.length === 0) return null;
    const codes = await this.store.countRecoveryCodes(user.id);
    const { token, tokenHash } = newMfaToken(user.id);
    await this.store.createMfaTicket({ userId: user.id, tokenHash, now: this.clock.now(), ttlMs: MFA_TOKEN_TTL_MS, maxAttempts: MFA_MAX_ATTEMPTS });
    const kinds = new Set<string>(factors.map((f) => f.kind));
    const listed = ['totp', 'passkey'].filter((k) => kinds.has(k));
    if (codes > 0) listed.push('recovery_code');
    return withReason(ErrorCode.UNAUTHENTICATED, 'MFA_REQUIRED', { mfaToken: token, factors: listed });
  }
}
