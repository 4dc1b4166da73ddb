import type { Clock } from '../clock.js';
import { newId } from '../ids.js';
import {
  AUTHENTICATION_CLAIMS,
  type ClaimSetSpec,
  hasTyp,
  parseJsonObject,
  validateClaimSet,
  withinLength,
} from '@tessera-gateway/subgraph/claims';
import { type KeySet, SIGNING_ALGORITHMS, type SigningKey, signJws, verifyJwsSignature } from './keys.js';
import { VerifiedTokenCache } from './verifiedTokenCache.js';
import type {
  AccessTokenClaims,
  AccessTokenVerification,
  IssueAccessTokenInput,
  IssuedAccessToken,
  PublicJwk,
  SigningAlgorithm,
} from './types.js';

export interface AccessTokenServiceOptions {
  keys: KeySet;
  issuer: string;
  audience: string;
  /** AUTH_CLIENT_ID: the `client_id` claim (RFC 9068). */
  clientId: string;
  ttlMs: number;
  /** Leeway for exp, nbf and iat; at most 60 (docs/contract.md section 3.1). */
  clockToleranceSec: number;
  clock: Clock;
  newJti?: () => string;
  /**
   * How many verified tokens to remember, so a token presented again skips the signature check
   * (default 10,000; 0 turns the cache off). See VerifiedTokenCache.
   */
  verifiedCacheSize?: number;
}

export const ACCESS_TOKEN_TYP = 'at+jwt';
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000;

/**
 * The claims of an access token (docs/contract.md section 3.1). `client_id` (RFC 9068) and the
 * authentication claims (`auth_time`, `email_verified`, `amr`, `acr`: sections 7 and 8) are
 * checked when present but not required, so tokens issued before they were added stay valid
 * until they expire.
 */
export const ACCESS_TOKEN_CLAIMS: ClaimSetSpec = {
  typ: ACCESS_TOKEN_TYP,
  // Far above any token we issue; refuses huge inputs before any parsing.
  maxTokenLength: 8192,
  claims: {
    sub: 'id',
    sid: 'id',
    jti: 'id',
    roles: 'strings',
    scope: 'string',
    client_id: 'optional id',
    ...AUTHENTICATION_CLAIMS,
  },
};

const INVALID: AccessTokenVerification = { ok: false, reason: 'TOKEN_INVALID' };
const BASE64URL = /^[A-Za-z0-9_-]+$/;

interface CompactJws {
  key: SigningKey;
  signingInput: Buffer;
  payload: string;
  signature: Buffer;
}

/**
 * Issues and verifies access tokens (docs/contract.md section 3.1). Keys are imported once, looked
 * up by kid.
 *
 * Signatures are made and checked with node:crypto on libuv's thread pool (signJws and
 * verifyJwsSignature in keys.ts), the JWS checks here, as jose's jwtVerify makes them with the
 * options this service used to pass it (algorithms EdDSA/ES256, the key's own alg, typ at+jwt),
 * and the claims by validateClaimSet (claims.ts) against ACCESS_TOKEN_CLAIMS. jose's WebCrypto
 * path cost the event loop about as much again as the signature itself.
 */
export class AccessTokenService {
  private readonly byKid: Map<string, SigningKey>;
  private readonly newJti: () => string;
  private readonly verified: VerifiedTokenCache;

  constructor(private readonly options: AccessTokenServiceOptions) {
    const tolerance = options.clockToleranceSec;
    if (!(tolerance >= 0 && tolerance <= 60)) throw new RangeError('clockToleranceSec must be 0 to 60');
    this.byKid = new Map(options.keys.keys.map((key) => [key.kid, key]));
    this.newJti = options.newJti ?? (() => newId());
    this.verified = new VerifiedTokenCache({
      maxEntries: options.verifiedCacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE,
      clock: options.clock,
      clockToleranceSec: tolerance,
    });
  }

  async issue(input: IssueAccessTokenInput): Promise<IssuedAccessToken> {
    const { keys, issuer, audience, clientId, ttlMs, clock } = this.options;
    const nowMs = clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.floor(Math.min(nowMs + ttlMs, input.notAfter ?? Infinity) / 1000);
    if (!Number.isFinite(exp)) throw new RangeError('the token would have no finite expiry');
    const roles = [...input.roles];
    const claims = {
      sid: input.sessionId,
      roles,
      scope: input.scope ?? roles.join(' '),
      client_id: clientId,
      iss: issuer,
      aud: audience,
      sub: input.userId,
      jti: this.newJti(),
      iat,
      exp,
      ...(input.authTime !== undefined ? { auth_time: Math.floor(input.authTime / 1000) } : {}),
      ...(input.emailVerified !== undefined ? { email_verified: input.emailVerified } : {}),
      ...(input.amr !== undefined ? { amr: [...input.amr] } : {}),
      ...(input.acr !== undefined ? { acr: input.acr } : {}),
    };
    const token = await signJws(keys.active, { typ: ACCESS_TOKEN_TYP }, claims);
    return { token, expiresAt: exp * 1000, expiresIn: Math.max(0, exp - iat) };
  }

  /**
   * Never throws: a bad token is TOKEN_INVALID, a genuine but expired one TOKEN_EXPIRED. A token
   * that verified before and whose times are still acceptable is answered from the cache of
   * verified tokens (the same claims, frozen); callers still check its session's revocation.
   */
  async verify(token: string): Promise<AccessTokenVerification> {
    if (!withinLength(ACCESS_TOKEN_CLAIMS, token)) return INVALID;
    const cached = this.verified.get(token);
    if (cached !== undefined) return { ok: true, claims: cached };
    const nowSec = Math.floor(this.options.clock.now() / 1000);
    const jws = this.parse(token);
    if (jws === null || !(await verifyJwsSignature(jws.key, jws.signingInput, jws.signature))) return INVALID;
    const payload = decodeJsonObject(jws.payload);
    if (payload === null) return INVALID;
    const { issuer, audience, clockToleranceSec } = this.options;
    const checked = validateClaimSet<AccessTokenClaims>(ACCESS_TOKEN_CLAIMS, payload, {
      issuer,
      audience,
      nowSec,
      clockToleranceSec,
    });
    if (!checked.ok) return checked;
    return { ok: true, claims: this.verified.set(token, checked.claims, payload.nbf as number | undefined) };
  }

  /**
   * The claims of a token verified before whose times verification would still accept, from
   * the cache and synchronously; undefined otherwise (then call `verify`). Same answer as a
   * successful `verify` of that token.
   */
  cachedClaims(token: string): AccessTokenClaims | undefined {
    return this.verified.get(token);
  }

  /** Drops a token from the cache of verified tokens (its session was found revoked). */
  forget(token: string): void {
    this.verified.delete(token);
  }

  /** How many verified tokens are cached. */
  get cachedTokens(): number {
    return this.verified.size;
  }

  /** What /.well-known/jwks.json serves: public parts only. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.options.keys.publicJwks() };
  }

  /**
   * A compact JWS with a protected header that names a key we hold by kid, with that key's own
   * alg (EdDSA or ES256), typ at+jwt, and no crit; null for anything else.
   */
  private parse(token: string): CompactJws | null {
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return null;
    const encodedHeader = token.slice(0, first);
    const payload = token.slice(first + 1, second);
    const encodedSignature = token.slice(second + 1);
    if (!isBase64url(encodedHeader) || !isBase64url(payload) || !isBase64url(encodedSignature)) return null;
    const header = decodeJsonObject(encodedHeader);
    if (header === null || Object.hasOwn(header, 'crit')) return null;
    const { alg, kid, typ } = header;
    if (typeof alg !== 'string' || !SIGNING_ALGORITHMS.includes(alg as SigningAlgorithm)) return null;
    const key = typeof kid === 'string' ? this.byKid.get(kid) : undefined;
    if (!key || key.alg !== alg) return null;
    if (!hasTyp(ACCESS_TOKEN_CLAIMS, typ)) return null;
    return {
      key,
      signingInput: Buffer.from(token.slice(0, second), 'latin1'),
      payload,
      signature: Buffer.from(encodedSignature, 'base64url'),
    };
  }
}

/**
 * base64url as jose's decoder accepts it, minus padding: the URL-safe alphabet only, and no
 * length that leaves a lone 6-bit group (node's decoder would silently drop it; atob refuses).
 */
function isBase64url(value: string): boolean {
  return value.length % 4 !== 1 && BASE64URL.test(value);
}

function decodeJsonObject(encoded: string): Record<string, unknown> | null {
  return parseJsonObject(Buffer.from(encoded, 'base64url'));
}
