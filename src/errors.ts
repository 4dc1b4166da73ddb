/**
 * Domain errors: what went wrong, as the client will be told (a code, a reason, extra fields)
 * and the HTTP status it calls for, with no GraphQL in them. The GraphQL layer turns them into
 * GraphQL errors where they leave a resolver (src/graphql/errorBoundary.ts).
 */

/** Every code a client may see (docs/contract.md section 4). */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  RATE_LIMITED: 'RATE_LIMITED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why an access token was not accepted. */
export type TokenRejection = 'TOKEN_MISSING' | 'TOKEN_EXPIRED' | 'TOKEN_INVALID' | 'SESSION_REVOKED';
/** Why a refresh failed. */
export type RefreshRejection = 'REFRESH_TOKEN_INVALID' | 'REFRESH_TOKEN_EXPIRED' | 'REFRESH_TOKEN_REUSED';
/** Why a second factor (docs/contract.md section 8) did not let the caller in. */
export type FactorReason =
  | 'MFA_REQUIRED'
  | 'MFA_TOKEN_INVALID'
  | 'MFA_CODE_INVALID'
  | 'MFA_CODE_MALFORMED'
  | 'PASSKEY_INVALID'
  | 'PASSKEY_RESPONSE_MALFORMED'
  | 'FACTOR_NOT_FOUND';
/** A login code of a provider sign-in (exchangeLoginCode) that is unknown, spent, expired or forged. */
export type LoginCodeRejection = 'LOGIN_CODE_INVALID';
export type AuthReason = 'INVALID_CREDENTIALS' | TokenRejection | RefreshRejection | FactorReason | LoginCodeRejection;
/** Why a signed-in caller (or a disabled account's correct password) is refused: FORBIDDEN's reasons. */
export type ForbiddenReason =
  | 'ACCOUNT_DISABLED'
  | 'STEP_UP_REQUIRED'
  | 'EMAIL_NOT_VERIFIED'
  | 'FEATURE_DISABLED'
  /** unlinkIdentity of the account's only way to sign in. */
  | 'LAST_SIGN_IN_METHOD';
/** Why input was refused with a reason (BAD_USER_INPUT). */
export type InputReason = 'TOKEN_INVALID_OR_EXPIRED';
export type ErrorReason = AuthReason | ForbiddenReason | InputReason;

const MESSAGES: Record<AuthReason, string> = {
  INVALID_CREDENTIALS: 'Invalid email or password.',
  TOKEN_MISSING: 'Authentication required.',
  TOKEN_EXPIRED: 'The access token has expired.',
  TOKEN_INVALID: 'The access token is not valid.',
  SESSION_REVOKED: 'The session has ended.',
  REFRESH_TOKEN_INVALID: 'The refresh token is not valid.',
  REFRESH_TOKEN_EXPIRED: 'The refresh token has expired.',
  REFRESH_TOKEN_REUSED: 'The refresh token was already used; the session has been ended.',
  MFA_REQUIRED: 'A second factor is required to sign in.',
  MFA_TOKEN_INVALID: 'The MFA token is not valid or has expired; sign in again.',
  MFA_CODE_INVALID: 'The code is not valid.',
  MFA_CODE_MALFORMED: 'The code must be six digits (an authenticator app) or a recovery code.',
  PASSKEY_INVALID: 'The passkey could not be verified.',
  PASSKEY_RESPONSE_MALFORMED: 'The WebAuthn response is not well formed.',
  FACTOR_NOT_FOUND: 'No such factor (an enrolment expires after 15 minutes).',
  LOGIN_CODE_INVALID: 'The login code is not valid, has expired or was already used.',
};

/** A domain error with one of the reasons above and its message (plus extra fields). */
export function withReason(code: ErrorCode, reason: AuthReason, extra?: Readonly<Record<string, unknown>>): TesseraError {
  return new TesseraError(code, MESSAGES[reason], { reason, ...(extra ? { extra } : {}) });
}

export interface TesseraErrorOptions {
  /** `extensions.reason`. */
  reason?: ErrorReason;
  /** Further fields the client sees beside the code and reason (`retryAfter`, …). */
  extra?: Readonly<Record<string, unknown>>;
  /** The HTTP status the answer should have (unset: the transport's default). */
  httpStatus?: number;
}

/** The one error class the services throw: a contract code, and what the client sees with it. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly reason: ErrorReason | undefined;
  readonly extra: Readonly<Record<string, unknown>>;
  readonly httpStatus: number | undefined;

  constructor(code: ErrorCode, message: string, options: TesseraErrorOptions = {}) {
    super(message);
    this.name = 'TesseraError';
    this.code = code;
    this.reason = options.reason;
    this.extra = options.extra ?? {};
    this.httpStatus = options.httpStatus;
  }
}

export function unauthenticated(reason: AuthReason): TesseraError {
  return new TesseraError(ErrorCode.UNAUTHENTICATED, MESSAGES[reason], { reason });
}

export function forbidden(message = 'Not allowed.'): TesseraError {
  return new TesseraError(ErrorCode.FORBIDDEN, message);
}

export function badUserInput(message: string, reason?: InputReason): TesseraError {
  return new TesseraError(ErrorCode.BAD_USER_INPUT, message, reason ? { reason } : {});
}

const FORBIDDEN_MESSAGES: Record<ForbiddenReason, string> = {
  ACCOUNT_DISABLED: 'This account is disabled.',
  STEP_UP_REQUIRED: 'Sign in again to do this.',
  EMAIL_NOT_VERIFIED: 'Verify your email address first.',
  FEATURE_DISABLED: 'This feature is not available.',
  LAST_SIGN_IN_METHOD: 'This is the account’s last way to sign in: set a password or link another identity first.',
};

/** FORBIDDEN with a reason (and extra fields, e.g. `maxAge` for STEP_UP_REQUIRED). */
export function forbiddenBecause(reason: ForbiddenReason, extra?: Readonly<Record<string, unknown>>): TesseraError {
  return new TesseraError(ErrorCode.FORBIDDEN, FORBIDDEN_MESSAGES[reason], { reason, ...(extra ? { extra } : {}) });
}

export function rateLimited(retryAfterSeconds: number): TesseraError {
  return new TesseraError(ErrorCode.RATE_LIMITED, 'Too many attempts; try again later.', {
    extra: { retryAfter: retryAfterSeconds },
  });
}

export function serviceUnavailable(): TesseraError {
  return new TesseraError(ErrorCode.SERVICE_UNAVAILABLE, 'The service is temporarily unavailable.', {
    httpStatus: 503,
  });
}

/**
 * Thrown by a store when its backend cannot be reached or did not answer in time.
 * The GraphQL boundary turns it into SERVICE_UNAVAILABLE; nothing was half-written.
 */
export class StoreUnavailableError extends Error {
  constructor(cause?: unknown) {
    super('store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}

/** Bad configuration: the message is the one line printed at start. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
