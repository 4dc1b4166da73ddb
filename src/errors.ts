import { GraphQLError } from 'graphql';

/** Every code a client may see (contract section 4). */
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
export type AuthReason = 'INVALID_CREDENTIALS' | TokenRejection | RefreshRejection;

const MESSAGES: Record<AuthReason, string> = {
  INVALID_CREDENTIALS: 'Invalid email or password.',
  TOKEN_MISSING: 'Authentication required.',
  TOKEN_EXPIRED: 'The access token has expired.',
  TOKEN_INVALID: 'The access token is not valid.',
  SESSION_REVOKED: 'The session has ended.',
  REFRESH_TOKEN_INVALID: 'The refresh token is not valid.',
  REFRESH_TOKEN_EXPIRED: 'The refresh token has expired.',
  REFRESH_TOKEN_REUSED: 'The refresh token was already used; the session has been ended.',
};

/** The one error class resolvers throw: sets `extensions.code` (and `reason`) once. */
export class TesseraError extends GraphQLError {
  constructor(
    code: ErrorCode,
    message: string,
    extra: { reason?: AuthReason; retryAfter?: number; httpStatus?: number } = {},
  ) {
    const extensions: Record<string, unknown> = { code };
    if (extra.reason) extensions.reason = extra.reason;
    if (extra.retryAfter !== undefined) extensions.retryAfter = extra.retryAfter;
    if (extra.httpStatus !== undefined) extensions.http = { status: extra.httpStatus };
    super(message, { extensions });
    this.name = 'TesseraError';
  }
}

export function unauthenticated(reason: AuthReason): TesseraError {
  return new TesseraError(ErrorCode.UNAUTHENTICATED, MESSAGES[reason], { reason });
}

export function forbidden(message = 'Not allowed.'): TesseraError {
  return new TesseraError(ErrorCode.FORBIDDEN, message);
}

export function badUserInput(message: string): TesseraError {
  return new TesseraError(ErrorCode.BAD_USER_INPUT, message);
}

export function rateLimited(retryAfterSeconds: number): TesseraError {
  return new TesseraError(ErrorCode.RATE_LIMITED, 'Too many attempts; try again later.', {
    retryAfter: retryAfterSeconds,
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
