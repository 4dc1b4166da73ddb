import {
  type CompactJWSHeaderParameters,
  compactVerify,
  type CryptoKey,
  createRemoteJWKSet,
  customFetch,
  errors,
  type FlattenedJWSInput,
} from 'jose';
import type { Clock } from '../clock.js';
import { type ClaimSetSpec, hasTyp, parseJsonObject, type RegisteredClaims, validateClaimSet, withinLength } from './claims.js';
import { type KeySet, SIGNING_ALGORITHMS, signJws } from './keys.js';

/*
 * The trusted context (docs/contract.md section 6): a short-lived JWT the gateway attaches to every
 * subgraph request of a signed-in caller as `x-tessera-context`, addressed to that one subgraph.
 * Signing happens here (gateway side, with signJws from keys.ts, as access tokens are signed) and
 * so does verification (the `tessera/subgraph` verifier, with jose): only src/tokens imports jose.
 */

export const CONTEXT_TOKEN_TYP = 'tessera-ctx+jwt';
export const CONTEXT_HEADER = 'x-tessera-context';
/** The contract's upper bound on a context token's life. */
export const MAX_CONTEXT_TTL_MS = 60_000;

/** The claims of a context token (docs/contract.md section 6): a life and an age of at most 60 s. */
export const CONTEXT_TOKEN_CLAIMS: ClaimSetSpec = {
  typ: CONTEXT_TOKEN_TYP,
  // Far above any context token; refuses huge inputs before any parsing.
  maxTokenLength: 8192,
  claims: { sub: 'id', sid: 'id', roles: 'strings', scope: 'string' },
  maxAgeSec: MAX_CONTEXT_TTL_MS / 1000,
};

/**
 * Who the context token speaks for: the claims of the caller's verified access token. Pass the
 * verified claims object itself (the access-token cache hands out one frozen object per token),
 * so the signer can remember its cache key for it.
 */
export interface ContextSubject {
  sub: string;
  sid: string;
  roles: readonly string[];
  /** Space-separated, as in the access token. */
  scope: string;
  /** The access token's `exp` (seconds): a context token never outlives it. */
  exp: number;
}

export interface ContextTokenSignerOptions {
  keys: KeySet;
  /** AUTH_ISSUER. */
  issuer: string;
  clock: Clock;
  /** Life of a context token; at most (and by default) 60 s. */
  ttlMs?: number;
  /**
   * A signed context is reused until it has this little life left (default 10 s), so a token
   * sent to a subgraph always has at least this long before its `exp` when it leaves.
   */
  renewBeforeMs?: number;
  /** Signed contexts kept for reuse; the least recently used goes first. */
  maxEntries?: number;
}

interface CacheEntry {
  readonly key: string;
  readonly sid: string;
  token: Promise<string>;
  /** Epoch ms, whole seconds (as in the token). */
  readonly expiresAt: number;
}

/**
 * Signs context tokens with the gateway's active key, once per (session, subgraph, claim set):
 * a signed context is reused, whatever access token of the session the request carries, until
 * it has `renewBeforeMs` of life left, and only while it ends no later than the presented access
 * token. So a warm request does no signing: a busy session costs one signature per subgraph
 * every ~50 s. A revoked session's contexts are dropped at once (`dropSessions`, fed by the
 * revocation feed) and never handed out again; the caller is refused before any subgraph call
 * anyway. The key carries the audience, so a context is only ever sent to the subgraph it names.
 * Bounded (LRU).
 */
export class ContextTokenSigner {
  private readonly cache = new Map<string, CacheEntry>();
  /** The cache keys of each session, so a revocation drops them all. */
  private readonly bySession = new Map<string, Set<string>>();
  /** The claim-set part of the key, per subject object (the verified claims are one frozen object per access token). */
  private readonly subjectKeys = new WeakMap<ContextSubject, string>();
  private readonly ttlMs: number;
  private readonly renewBeforeMs: number;
  private readonly maxEntries: number;

  constructor(private readonly options: ContextTokenSignerOptions) {
    this.ttlMs = options.ttlMs ?? MAX_CONTEXT_TTL_MS;
    if (!(this.ttlMs >= 1000 && this.ttlMs <= MAX_CONTEXT_TTL_MS)) throw new RangeError('ttlMs must be 1 s to 60 s');
    this.renewBeforeMs = options.renewBeforeMs ?? Math.min(10_000, this.ttlMs / 2);
    if (!(this.renewBeforeMs >= 0 && this.renewBeforeMs < this.ttlMs)) throw new RangeError('renewBeforeMs must be 0 or more and less than ttlMs');
    this.maxEntries = options.maxEntries ?? 10_000;
    if (!(this.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
  }

  /** A context token for `subject`, addressed to the subgraph `audience`. */
  sign(subject: ContextSubject, audience: string): Promise<string> {
    const nowMs = this.options.clock.now();
    const key = `${this.subjectKey(subject)}\u0000${audience}`;
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key);
      if (cached.expiresAt - nowMs > this.renewBeforeMs && cached.expiresAt <= subject.exp * 1000) {
        this.cache.set(key, cached);
        return cached.token;
      }
      this.forget(cached);
    }
    const iat = Math.floor(nowMs / 1000);
    // Never past the access token, and never less than a second (the token is already checked live).
    const exp = Math.max(iat + 1, Math.min(Math.floor((nowMs + this.ttlMs) / 1000), subject.exp));
    const token = this.signNow(subject, audience, iat, exp);
    const entry: CacheEntry = { key, sid: subject.sid, token, expiresAt: exp * 1000 };
    this.cache.set(key, entry);
    let keys = this.bySession.get(subject.sid);
    if (!keys) this.bySession.set(subject.sid, (keys = new Set()));
    keys.add(key);
    token.catch(() => {
      if (this.cache.get(key) === entry) this.forget(entry);
    });
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.values().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
    return token;
  }

  /** These sessions were revoked: their signed contexts are dropped and never handed out again. */
  dropSessions(sessionIds: readonly string[]): void {
    for (const sid of sessionIds) {
      const keys = this.bySession.get(sid);
      if (!keys) continue;
      for (const key of keys) this.cache.delete(key);
      this.bySession.delete(sid);
    }
  }

  /** How many signed contexts are kept (for tests and metrics). */
  get size(): number {
    return this.cache.size;
  }

  private forget(entry: CacheEntry): void {
    if (this.cache.get(entry.key) === entry) this.cache.delete(entry.key);
    const keys = this.bySession.get(entry.sid);
    if (!keys) return;
    keys.delete(entry.key);
    if (keys.size === 0) this.bySession.delete(entry.sid);
  }

  /** Everything the token says about the caller; NUL never occurs in these strings' JSON. */
  private subjectKey(subject: ContextSubject): string {
    let key = this.subjectKeys.get(subject);
    if (key === undefined) {
      key = JSON.stringify([subject.sid, subject.sub, subject.roles, subject.scope]);
      this.subjectKeys.set(subject, key);
    }
    return key;
  }

  private signNow(subject: ContextSubject, audience: string, iat: number, exp: number): Promise<string> {
    const { keys, issuer } = this.options;
    // The claims in the order jose's SignJWT wrote them, so the tokens are as they were.
    const claims = {
      sid: subject.sid,
      roles: [...subject.roles],
      scope: subject.scope,
      iss: issuer,
      aud: audience,
      sub: subject.sub,
      iat,
      exp,
    };
    return signJws(keys.active, { typ: CONTEXT_TOKEN_TYP }, claims);
  }
}

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
    verified = await compactVerify(token, resolveKey, { algorithms: [...SIGNING_ALGORITHMS] });
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
  const { sub, sid, roles, scope, iat, exp } = checked.claims;
  return { ok: true, claims: { sub, sid, roles, scope, iat, exp } };
}
