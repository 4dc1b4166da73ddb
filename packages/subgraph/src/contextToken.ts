import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  createRemoteJWKSet,
  customFetch,
  errors,
  type FlattenedJWSInput,
  jwtVerify,
  type JWTPayload,
} from 'jose';

/*
 * The trusted context (README, "Federation"): a short-lived JWT the gateway attaches to every
 * subgraph request of a signed-in caller as `x-tessera-context`, addressed to that one subgraph.
 * The gateway signs it (its src/tokens/contextTokens.ts); this package verifies it, with jose alone.
 */

/** The JWT `typ` of a context token. */
export const CONTEXT_TOKEN_TYP = 'tessera-ctx+jwt';
/** The request header the gateway sends the context token in. */
export const CONTEXT_HEADER = 'x-tessera-context';
/** The upper bound on a context token's life. */
export const MAX_CONTEXT_TTL_MS = 60_000;
/** The algorithms the gateway signs with, and the only ones accepted. */
const SIGNING_ALGORITHMS = ['EdDSA', 'ES256'];
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'sid', 'iat', 'exp', 'roles', 'scope'];
/** Far above any context token; refuses huge inputs before any parsing. */
const MAX_TOKEN_LENGTH = 8192;

/** What a verified context token says. */
export interface ContextClaims {
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
 * alg), `typ`, `iss`, `aud`, `exp`, `iat` not in the future and at most 60 s old, and the types
 * of every claim. Never throws.
 */
export async function verifyContextToken(token: string, options: VerifyContextOptions): Promise<ContextVerification> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'TOKEN_INVALID' };
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
  try {
    const { payload } = await jwtVerify(token, resolveKey, {
      algorithms: SIGNING_ALGORITHMS,
      issuer: options.issuer,
      audience: options.audience,
      typ: CONTEXT_TOKEN_TYP,
      currentDate: new Date(options.now),
      clockTolerance: options.clockToleranceSec,
      maxTokenAge: MAX_CONTEXT_TTL_MS / 1000,
      requiredClaims: REQUIRED_CLAIMS,
    });
    const claims = checkClaims(payload, options);
    return claims ? { ok: true, claims } : { ok: false, reason: 'TOKEN_INVALID' };
  } catch (error) {
    if (keyFailure !== null) return { ok: false, reason: 'KEYS_UNAVAILABLE', cause: keyFailure };
    return { ok: false, reason: error instanceof errors.JWTExpired ? 'TOKEN_EXPIRED' : 'TOKEN_INVALID' };
  }
}

/** What jose leaves to us: claim types, one exact audience, and a life of at most 60 s. */
function checkClaims(payload: JWTPayload, options: VerifyContextOptions): ContextClaims | null {
  const { aud, sub, sid, iat, exp, roles, scope } = payload;
  if (aud !== options.audience) return null;
  if (typeof iat !== 'number' || !Number.isFinite(iat) || typeof exp !== 'number' || !Number.isFinite(exp)) return null;
  if (exp - iat > MAX_CONTEXT_TTL_MS / 1000) return null;
  if (typeof sub !== 'string' || sub === '' || typeof sid !== 'string' || sid === '') return null;
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string') || typeof scope !== 'string') return null;
  return { sub, sid, roles: [...roles], scope, iat, exp };
}
