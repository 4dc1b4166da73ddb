import type { TokenRejection } from '../errors.js';

/** Claims of a verified access token (docs/contract.md section 3.1). Times in seconds since the epoch. */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  roles: string[];
  scope: string;
  /** AUTH_CLIENT_ID (RFC 9068); absent from tokens issued before it was added. */
  client_id?: string;
  /** Seconds: the last time the user proved a credential in the session. Absent from tokens issued before it was added (never fresh). */
  auth_time?: number;
  /** Absent from older tokens (read as not verified). */
  email_verified?: boolean;
  /** RFC 8176 authentication methods (`pwd`, `otp`, `hwk`, `swk`, `mfa`, `fed`). */
  amr?: string[];
  /** `aal1` or `aal2`. */
  acr?: string;
}

export type AccessTokenVerification =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; reason: Exclude<TokenRejection, 'TOKEN_MISSING' | 'SESSION_REVOKED'> };

export interface IssueAccessTokenInput {
  userId: string;
  sessionId: string;
  roles: string[];
  /** Space-separated; defaults to the roles. */
  scope?: string;
  /** Epoch ms the token must not outlive (the session's absolute end). */
  notAfter?: number;
  /**
   * The authentication claims (AuthService always sets them: the session's). Each one left out
   * is left out of the token, as in tokens issued before the claims existed.
   * `authTime`: epoch ms of the session's last proof of a credential (`auth_time`, in seconds).
   */
  authTime?: number;
  emailVerified?: boolean;
  amr?: readonly string[];
  acr?: string;
}

export interface IssuedAccessToken {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Seconds from now. */
  expiresIn: number;
}

export type SigningAlgorithm = 'EdDSA' | 'ES256';

/** A public JWK as published at /.well-known/jwks.json. */
export interface PublicJwk {
  kty: string;
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
  crv: string;
  x: string;
  y?: string;
}
