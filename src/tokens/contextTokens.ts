import { CONTEXT_TOKEN_TYP, MAX_CONTEXT_TTL_MS } from '@tessera-gateway/subgraph/claims';
import type { Clock } from '../clock.js';
import { type KeySet, signJws } from './keys.js';

/*
 * The trusted context (docs/contract.md section 6): a short-lived JWT the gateway attaches to every
 * subgraph request of a signed-in caller as `x-tessera-context`, addressed to that one subgraph.
 * Signing happens here (gateway side, with signJws from keys.ts, as access tokens are signed);
 * verification is the subgraph package's (packages/subgraph, `@tessera-gateway/subgraph`), whose
 * header name, typ, 60 s bound and claim-set spec the gateway uses as they are: defined once.
 */

export { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, MAX_CONTEXT_TTL_MS } from '@tessera-gateway/subgraph/claims';

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
  /** The access token's authentication claims, passed on as they are (absent from older tokens). */
  auth_time?: number;
  email_verified?: boolean;
  amr?: readonly string[];
  acr?: string;
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
      key = JSON.stringify([
        subject.sid,
        subject.sub,
        subject.roles,
        subject.scope,
        subject.auth_time ?? null,
        subject.email_verified ?? null,
        subject.amr ?? null,
        subject.acr ?? null,
      ]);
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
      ...(subject.auth_time !== undefined ? { auth_time: subject.auth_time } : {}),
      ...(subject.email_verified !== undefined ? { email_verified: subject.email_verified } : {}),
      ...(subject.amr !== undefined ? { amr: [...subject.amr] } : {}),
      ...(subject.acr !== undefined ? { acr: subject.acr } : {}),
    };
    return signJws(keys.active, { typ: CONTEXT_TOKEN_TYP }, claims);
  }
}
