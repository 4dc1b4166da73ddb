import type { TesseraError } from '../errors.js';
import type { EventOrigin } from '../events/types.js';
import type { UserRecord } from '../store/types.js';

/**
 * The MFA step of login (docs/contract.md section 8), asked by AuthService after a correct
 * password. Implemented by src/factors/ (MfaGate); without it, a password is enough.
 */
export interface SecondFactorGate {
  /**
   * The `UNAUTHENTICATED` `MFA_REQUIRED` error to answer (its `mfaToken` already stored) when the
   * user has an active factor; null when the user has none.
   */
  challenge(user: UserRecord, client: EventOrigin): Promise<TesseraError | null>;
}
