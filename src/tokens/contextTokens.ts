import type { Clock } from '../clock.js';
import { type KeySet, signJws } from './keys.js';

/*
 * The trusted context (contract section 6): a short-lived JWT the gateway attaches to every
 * subgraph request of a signed-in caller as `x-tessera-context`, addressed to that one subgraph.
 * Signing happens here (gateway side, with signJws from keys.ts, as access tokens are signed);
 * verification is the subgraph package's (packages/subgraph, `@tessera-gateway/subgraph`), which
 * keeps its own copy of the header name, the typ and the 60 s bound: the round-trip tests in
 * test/federation/contextTokens.test.ts hold the two sides together.
 */

export const CONTEXT_TOKEN_TYP = 'tessera-ctx+jwt';
export const CONTEXT_HEADER = 'x-tessera-context';
/** The contract's upper bound on a context token's life. */
export const MAX_CONTEXT_TTL_MS = 60_000;

/** Who the context token speaks for: the claims of the caller's verified access token. */
export interface ContextSubject {
  /** The access token's `jti`: one signed context per access token and subgraph is reused. */
  jti: string;
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
  /** Signed contexts kept for reuse; the least recently used goes first. */
  maxEntries?: number;
}

interface CacheEntry {
  token: Promise<string>;
  /** Epoch ms, whole seconds (as in the token). */
  issuedAt: number;
  expiresAt: number;
}

/**
 * Signs context tokens with the gateway's active key. One signature per (access token, subgraph)
 * is reused while it has more than half its life left, so a busy caller costs one signature per
 * subgraph every ~30 s instead of one per request. The cache is bounded (LRU).
 */
export class ContextTokenSigner {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(private readonly options: ContextTokenSignerOptions) {
    this.ttlMs = options.ttlMs ?? MAX_CONTEXT_TTL_MS;
    if (!(this.ttlMs >= 1000 && this.ttlMs <= MAX_CONTEXT_TTL_MS)) throw new RangeError('ttlMs must be 1 s to 60 s');
    this.maxEntries = options.maxEntries ?? 10_000;
    if (!(this.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
  }

  /** A context token for `subject`, addressed to the subgraph `audience`. */
  sign(subject: ContextSubject, audience: string): Promise<string> {
    const nowMs = this.options.clock.now();
    const key = `${subject.jti} ${audience}`;
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key);
      if (cached.expiresAt - nowMs > (cached.expiresAt - cached.issuedAt) / 2) {
        this.cache.set(key, cached);
        return cached.token;
      }
    }
    const iat = Math.floor(nowMs / 1000);
    // Never past the access token, and never less than a second (the token is already checked live).
    const exp = Math.max(iat + 1, Math.min(Math.floor((nowMs + this.ttlMs) / 1000), subject.exp));
    const token = this.signNow(subject, audience, iat, exp);
    const entry: CacheEntry = { token, issuedAt: iat * 1000, expiresAt: exp * 1000 };
    this.cache.set(key, entry);
    token.catch(() => {
      if (this.cache.get(key) === entry) this.cache.delete(key);
    });
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return token;
  }

  /** How many signed contexts are kept (for tests and metrics). */
  get size(): number {
    return this.cache.size;
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
