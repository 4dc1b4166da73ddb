import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  createRemoteJWKSet,
  customFetch,
  compactVerify,
  errors,
  type FlattenedJWSInput,
} from 'jose';
import {
  type AuthenticationClaims,
  CONTEXT_TOKEN_CLAIMS,
  hasTyp,
  parseJsonObject,
  type RegisteredClaims,
  validateClaimSet,
  withinLength,
} from './claims.js';

export { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, MAX_CONTEXT_TTL_MS } from './claims.js';

/*
 * The trusted context (README, "Federation"): a short-lived JWT the gateway attaches to every
 * subgraph request of a signed-in caller as `x-tessera-context`, addressed to that one subgraph.
 * The gateway signs it (its src/tokens/contextTokens.ts); this package verifies it, with jose alone.
 */

/** The algorithms the gateway signs with, and the only ones accepted. */
const SIGNING_ALGORITHMS = ['EdDSA', 'ES256'];

/** What a verified context token says (the authentication claims absent from tokens of gateways before them). */
export interface ContextClaims extends AuthenticationClaims {
  sub: string;
  sid: string;
  roles: string[];
  scope: string;
  iat: number;
  exp: number;
}

export type ContextVerification =
  | { ok: true; claims: ContextClaims }
  | { ok: false; reason: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' }
  /** The keys could not be fetched: not the caller's fault. */
  | { ok: false; reason: 'KEYS_UNAVAILABLE'; cause: unknown };

/** Resolves a token's verification key from its header (a remote JWKS). */
export type KeyResolver = (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** A fetch as jose calls it for the JWKS. */
export type JwksFetch = (url: string, init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal }) => Promise<Response>;

/**
 * The gateway's published keys, fetched on first use and cached (10 minutes); a token with a kid
 * the cache does not know triggers a refetch, at most once every `cooldownMs` (jose's
 * createRemoteJWKSet).
 */
export function remoteKeyResolver(jwksUrl: string | URL, options: { fetch?: JwksFetch; cooldownMs?: number } = {}): KeyResolver {
  const jwks = createRemoteJWKSet(new URL(jwksUrl), {
    cooldownDuration: options.cooldownMs ?? 30_000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
  return (header, token) => jwks(header, token);
}

export interface VerifyContextOptions {
  keys: KeyResolver;
  issuer: string;
  /** The subgraph's own name. */
  audience: string;
  /** Epoch ms. */
  now: number;
  /** Leeway for exp and iat, in seconds. */
  clockToleranceSec: number;
}

/**
 * Verifies a context token: signature by a published key (with a kid, no crit, the key's own
 * alg), `typ`, then its claims against CONTEXT_TOKEN_CLAIMS (claims.ts): `iss`, `aud`, `exp`,
 * `iat` not in the future and at most 60 s old, and the types of every claim. Never throws.
 */
export async function verifyContextToken(token: string, options: VerifyContextOptions): Promise<ContextVerification> {
  if (!withinLength(CONTEXT_TOKEN_CLAIMS, token)) return { ok: false, reason: 'TOKEN_INVALID' };
  let keyFailure: unknown = null;
  const resolveKey: KeyResolver = async (header, input) => {
    if (Object.hasOwn(header, 'crit')) throw new Error('crit header refused');
    if (typeof header.kid !== 'string' || header.kid === '') throw new Error('kid required');
    try {
      return await options.keys(header, input);
    } catch (error) {
      // An unknown kid is the token's fault; a JWKS that cannot be fetched is not.
      if (!(error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)) keyFailure = error;
      throw error;
    }
  };
  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    verified = await compactVerify(token, resolveKey, { algorithms: SIGNING_ALGORITHMS });
  } catch {
    if (keyFailure !== null) return { ok: false, reason: 'KEYS_UNAVAILABLE', cause: keyFailure };
    return { ok: false, reason: 'TOKEN_INVALID' };
  }
  const payload = parseJsonObject(verified.payload);
  if (!hasTyp(CONTEXT_TOKEN_CLAIMS, verified.protectedHeader.typ) || payload === null) return { ok: false, reason: 'TOKEN_INVALID' };
  const checked = validateClaimSet<RegisteredClaims & ContextClaims>(CONTEXT_TOKEN_CLAIMS, payload, {
    issuer: options.issuer,
    audience: options.audience,
    nowSec: Math.floor(options.now / 1000),
    clockToleranceSec: options.clockToleranceSec,
  });
  if (!checked.ok) return checked;
  const { sub, sid, roles, scope, iat, exp, auth_time, email_verified, amr, acr } = checked.claims;
  return {
    ok: true,
    claims: {
      sub,
      sid,
      roles,
      scope,
      iat,
      exp,
      ...(auth_time !== undefined ? { auth_time } : {}),
      ...(email_verified !== undefined ? { email_verified } : {}),
      ...(amr !== undefined ? { amr } : {}),
      ...(acr !== undefined ? { acr } : {}),
    },
  };
}
