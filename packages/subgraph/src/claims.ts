/*
 * The claims of the JWTs Tessera signs, checked by one function against a spec per token type:
 * access tokens (accessTokens.ts, docs/contract.md section 3.1) and context tokens
 * (contextTokens.ts, docs/contract.md section 6). The signature is checked before, by the caller.
 *
 * The checks run in the order jose's jwtVerify makes them, so that TOKEN_EXPIRED still means
 * "genuine, for us, and only too old": the required claims present, `iss`, `aud` (a string, or an
 * array holding ours), `iat` a number, `nbf` (if any) not in the future beyond the tolerance,
 * `exp` a number, then expired if `exp` <= now - tolerance (or, with a maximum age, `iat` older
 * than that beyond the tolerance). Then ours: `iat` not in the future beyond the tolerance, finite
 * times, one exact `aud`, the life within the maximum age, and the type of every claim.
 *
 * No imports: the module holds the rules alone. It lives in the subgraph package (which depends on
 * jose alone) so that the gateway (`@tessera-gateway/subgraph/claims`) and the subgraph verifier
 * share one definition.
 */

/**
 * What a claim must hold: a non-empty string (`id`), any string, an array of strings; the
 * `optional` kinds: that when present (claims added later, so tokens issued before them stay
 * valid until they expire): an id, a non-empty string, strings, a whole number of seconds
 * (`auth_time`), a boolean (`email_verified`).
 */
export type ClaimKind =
  | 'id'
  | 'string'
  | 'strings'
  | 'optional id'
  | 'optional strings'
  | 'optional seconds'
  | 'optional boolean';

/** One token type's header `typ`, size bound and claims. */
export interface ClaimSetSpec {
  /** The JOSE header's `typ`, compared as jose does (case-insensitive, `application/` implied). */
  typ: string;
  /** Longer tokens are refused before any parsing. */
  maxTokenLength: number;
  /**
   * The claims beside the registered ones every token carries (`iss`, `aud`, `iat`, `exp`; `nbf`
   * optional), and what each must hold. All but the optional ones are required.
   */
  claims: Readonly<Record<string, ClaimKind>>;
  /** Seconds: the longest life (`exp - iat`) and the greatest age (`now - iat`) a token may have. */
  maxAgeSec?: number;
}

export interface ClaimCheckOptions {
  issuer: string;
  audience: string;
  /** Seconds since the epoch. */
  nowSec: number;
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. */
  clockToleranceSec: number;
}

/** The registered claims every valid token has, as validated. */
export interface RegisteredClaims {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

export type ClaimSetValidation<C> = { ok: true; claims: C } | { ok: false; reason: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' };

const REGISTERED = ['iss', 'aud', 'iat', 'exp'] as const;
const INVALID = { ok: false, reason: 'TOKEN_INVALID' } as const;
const EXPIRED = { ok: false, reason: 'TOKEN_EXPIRED' } as const;

/**
 * Validates a token's claims against its spec. The claims come back as a new object: the
 * registered ones, then the spec's in its order (arrays copied; an absent optional claim left out).
 */
export function validateClaimSet<C extends RegisteredClaims>(
  spec: ClaimSetSpec,
  payload: Record<string, unknown>,
  options: ClaimCheckOptions,
): ClaimSetValidation<C> {
  const { issuer, audience, nowSec: now, clockToleranceSec: tolerance } = options;
  for (const claim of REGISTERED) if (!Object.hasOwn(payload, claim)) return INVALID;
  for (const [claim, kind] of Object.entries(spec.claims)) {
    if (!isOptional(kind) && !Object.hasOwn(payload, claim)) return INVALID;
  }
  const { iss, aud, iat, nbf, exp } = payload;
  if (iss !== issuer) return INVALID;
  if (!(typeof aud === 'string' ? aud === audience : Array.isArray(aud) && aud.includes(audience))) return INVALID;
  if (typeof iat !== 'number' || (nbf !== undefined && typeof nbf !== 'number') || typeof exp !== 'number') return INVALID;
  const times = timeVerdict(spec, { iat, exp, ...(nbf !== undefined ? { nbf: nbf as number } : {}) }, now, tolerance);
  if (times !== 'ok') return times === 'expired' ? EXPIRED : INVALID;
  if (!Number.isFinite(iat) || !Number.isFinite(exp)) return INVALID;
  if (aud !== audience) return INVALID;
  if (spec.maxAgeSec !== undefined && exp - iat > spec.maxAgeSec) return INVALID;
  const claims: Record<string, unknown> = { iss, aud, iat, exp };
  for (const [claim, kind] of Object.entries(spec.claims)) {
    const value = payload[claim];
    if (isOptional(kind) && value === undefined) continue;
    if (!holds(kind, value)) return INVALID;
    claims[claim] = Array.isArray(value) ? [...value] : value;
  }
  return { ok: true, claims: claims as unknown as C };
}

/** A token's times, in seconds since the epoch. */
export interface TokenTimes {
  iat: number;
  exp: number;
  nbf?: number;
}

/**
 * The time rules of a token, in jose's order: `nbf` in the future (beyond the tolerance) is
 * invalid; then `exp` passed, or (with a maximum age) `iat` older than that, is expired; then
 * `iat` in the future is invalid. Used by validateClaimSet, and by caches of verified tokens to
 * serve a token only while verifying it afresh would still accept its times.
 */
export function timeVerdict(spec: ClaimSetSpec, times: TokenTimes, nowSec: number, clockToleranceSec: number): 'ok' | 'expired' | 'invalid' {
  const { iat, exp, nbf } = times;
  if (nbf !== undefined && nbf > nowSec + clockToleranceSec) return 'invalid';
  if (exp <= nowSec - clockToleranceSec) return 'expired';
  if (spec.maxAgeSec !== undefined && nowSec - iat - clockToleranceSec > spec.maxAgeSec) return 'expired';
  if (iat > nowSec + clockToleranceSec) return 'invalid';
  return 'ok';
}

function isOptional(kind: ClaimKind): boolean {
  return kind.startsWith('optional ');
}

function holds(kind: ClaimKind, value: unknown): boolean {
  switch (kind) {
    case 'id':
    case 'optional id':
      return typeof value === 'string' && value.length > 0;
    case 'string':
      return typeof value === 'string';
    case 'strings':
    case 'optional strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    case 'optional seconds':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
    case 'optional boolean':
      return typeof value === 'boolean';
  }
}

/** Whether a token is short enough to be looked at. */
export function withinLength(spec: ClaimSetSpec, token: unknown): token is string {
  return typeof token === 'string' && token.length > 0 && token.length <= spec.maxTokenLength;
}

/** Whether a JOSE header's `typ` is the spec's, compared as jose compares typ values. */
export function hasTyp(spec: ClaimSetSpec, typ: unknown): boolean {
  return typeof typ === 'string' && normalizeTyp(typ) === normalizeTyp(spec.typ);
}

/** jose's comparison of typ values: case-insensitive, `application/` implied when there is no slash. */
function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
}

/** As jose reads JOSE headers and claims: UTF-8 that does not decode is refused, not replaced. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A JOSE header or claims set from its decoded bytes: a JSON object, or null. */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(STRICT_UTF8.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * How and when the user proved who they are (docs/contract.md sections 7 and 8), carried by access
 * and context tokens alike: `auth_time` (seconds), `email_verified`, `amr` (RFC 8176 values) and
 * `acr` (`aal1`, `aal2`). Optional: tokens issued before they were added stay valid until they
 * expire (a token without `auth_time` is simply never fresh).
 */
export const AUTHENTICATION_CLAIMS = {
  auth_time: 'optional seconds',
  email_verified: 'optional boolean',
  amr: 'optional strings',
  acr: 'optional id',
} as const satisfies Readonly<Record<string, ClaimKind>>;

/** The authentication claims as a validated token has them (each absent from older tokens). */
export interface AuthenticationClaims {
  /** Seconds since the epoch: the last time the user proved a credential in the session. */
  auth_time?: number;
  email_verified?: boolean;
  amr?: string[];
  acr?: string;
}

// ---------------------------------------------------------------------------------------------
// Context tokens (docs/contract.md section 6): the gateway signs them, this package verifies them.

/** The JWT `typ` of a context token. */
export const CONTEXT_TOKEN_TYP = 'tessera-ctx+jwt';
/** The request header the gateway sends the context token in. */
export const CONTEXT_HEADER = 'x-tessera-context';
/** The upper bound on a context token's life. */
export const MAX_CONTEXT_TTL_MS = 60_000;

/** The claims of a context token: a life and an age of at most 60 s (checked by validateClaimSet above). */
export const CONTEXT_TOKEN_CLAIMS: ClaimSetSpec = {
  typ: CONTEXT_TOKEN_TYP,
  // Far above any context token; refuses huge inputs before any parsing.
  maxTokenLength: 8192,
  claims: {
    sub: 'id',
    sid: 'id',
    roles: 'strings',
    scope: 'string',
    ...AUTHENTICATION_CLAIMS,
  },
  maxAgeSec: MAX_CONTEXT_TTL_MS / 1000,
};
