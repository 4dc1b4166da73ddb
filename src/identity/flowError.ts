/**
 * Why a sign-in with another provider failed: the `?error=` the browser is sent back with
 * (README, Sign in with other identity providers, lists them). Never a detail of the provider's
 * answer: those go to the log.
 */
export const FLOW_ERRORS = [
  /** The callback lacks what the provider must send (code). */
  'invalid_request',
  /** The state is missing, unknown, spent, expired, or was started in another browser. */
  'invalid_state',
  /** The link ticket of startIdentityLink is unknown, spent or for another provider or redirect_uri. */
  'invalid_ticket',
  /** The user declined at the provider. */
  'access_denied',
  /** The provider answered with an error (a refused or replayed code, a 5xx, a malformed answer). */
  'provider_error',
  /** The provider did not answer in time, or could not be reached. */
  'provider_unavailable',
  /** The ID token failed a check: signature, iss, aud, exp, nonce. */
  'invalid_id_token',
  /** The provider gave no email, and an account needs one. */
  'email_missing',
  /** The provider's email belongs to an account, and the provider does not assert it as verified: it never links. */
  'email_not_verified',
  /** That identity is already linked to another account. */
  'identity_in_use',
  /** The account is disabled. */
  'account_disabled',
  /** A new account would be needed, and SIGNUP_ENABLED is false. */
  'signup_disabled',
  /** The store could not be reached. */
  'temporarily_unavailable',
] as const;
export type FlowErrorReason = (typeof FLOW_ERRORS)[number];

export class FlowError extends Error {
  constructor(readonly reason: FlowErrorReason) {
    super(reason);
    this.name = 'FlowError';
  }
}
