/**
 * `@tessera-gateway/subgraph`: what a subgraph behind a Tessera gateway needs to trust the caller.
 *
 * The gateway never forwards the client's bearer token or cookies. For a signed-in caller it sets
 * `x-tessera-context: <JWT>` on every subgraph request: signed with the gateway's key (published
 * at `/.well-known/jwks.json`), `typ: "tessera-ctx+jwt"`, `iss` = the gateway's `AUTH_ISSUER`,
 * `aud` = the subgraph's name, valid for at most 60 s.
 *
 * @example
 * ```ts
 * import { createContextVerifier } from '@tessera-gateway/subgraph';
 *
 * const verifier = createContextVerifier({
 *   jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
 *   issuer: 'https://auth.example.com',
 *   audience: 'orders', // this subgraph's name in SUBGRAPHS / the supergraph
 * });
 *
 * // Apollo Server: context: async ({ req }) => verifier.verify(req.headers)
 * const { user } = await verifier.verify(request.headers); // throws a ContextError (UNAUTHENTICATED) for a bad header
 * if (!user) throw new GraphQLError('Sign in first.', { extensions: { code: 'UNAUTHENTICATED' } });
 * ```
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CONTEXT_TOKEN_CLAIMS, type TokenTimes, timeVerdict } from './claims.js';
import { CONTEXT_HEADER, type JwksFetch, type KeyResolver, remoteKeyResolver, verifyContextToken } from './contextToken.js';

export { CONTEXT_HEADER, CONTEXT_TOKEN_TYP, type JwksFetch } from './contextToken.js';

/** What a {@link ContextError} says, in the shape of a GraphQL error's `extensions`. */
export type ContextErrorExtensions =
  | { code: 'UNAUTHENTICATED'; reason: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' }
  | { code: 'SERVICE_UNAVAILABLE' };

/**
 * What {@link ContextVerifier.verify} throws. Not a `GraphQLError` (this package does not load
 * graphql), but shaped like one: graphql-js keeps the `extensions` of any error a resolver throws,
 * so Apollo Server answers `extensions.code` `UNAUTHENTICATED` (or `SERVICE_UNAVAILABLE`) with
 * the message below. Thrown from Apollo's `context` function it keeps its `extensions` too (Apollo
 * prefixes the message with "Context creation failed: " and answers HTTP 500 there).
 */
export class ContextError extends Error {
  override readonly name = 'ContextError';
  readonly extensions: ContextErrorExtensions;

  constructor(message: string, extensions: ContextErrorExtensions, options?: { cause?: unknown }) {
    super(message, options);
    this.extensions = extensions;
  }
}

/** The caller the gateway vouches for. */
export interface SubgraphUser {
  /** The user id (the access token's `sub`). */
  id: string;
  /** The user's roles. */
  roles: string[];
  /** The session the caller's access token belongs to. */
  sessionId: string;
  /** The access token's scopes (its space-separated `scope` claim, split). */
  scopes: string[];
  /**
   * Epoch seconds: the last time the user proved a credential in this session (`auth_time`);
   * null from a gateway that does not send it.
   */
  authTime: number | null;
  /** Whether the user's email address is verified (`email_verified`); null when not sent. */
  emailVerified: boolean | null;
  /** RFC 8176 authentication methods of the session (`amr`, e.g. `["pwd"]`); empty when not sent. */
  amr: string[];
  /** Authentication assurance level (`acr`: `aal1`, `aal2`); null when not sent. */
  acr: string | null;
}

/** The result of {@link ContextVerifier.verify}: `user` is null for an anonymous request. */
export interface VerifiedContext {
  user: SubgraphUser | null;
}

/** Request headers in any of the shapes Node servers hand out. */
export type HeadersLike = Headers | IncomingHttpHeaders | Record<string, string | string[] | undefined>;

export interface ContextVerifierOptions {
  /** The gateway's JWKS, e.g. `https://auth.example.com/.well-known/jwks.json`. */
  jwksUrl: string | URL;
  /** The gateway's `AUTH_ISSUER`. */
  issuer: string;
  /** This subgraph's name, as the gateway knows it (`SUBGRAPHS=orders=…` → `"orders"`). */
  audience: string;
  /** How to fetch the JWKS (default: the global `fetch`). */
  fetch?: JwksFetch;
  /** Time source, epoch milliseconds (default: `Date.now`). */
  clock?: { now(): number };
  /** Leeway for `exp` and `iat`, in seconds (default 5, at most 60). */
  clockToleranceSec?: number;
  /**
   * After a successful fetch, how long before a token with an unknown `kid` may trigger another
   * fetch of the JWKS (default 30 000 ms). The keys are cached for 10 minutes either way.
   */
  jwksCooldownMs?: number;
  /**
   * Verified context tokens kept (default 10 000; 0: none), so a token the gateway sends again
   * (it reuses one per session for up to ~50 s) is verified once. Keyed by the exact token
   * string, served only while verifying it afresh would still accept its times, and only
   * successes are kept.
   */
  cacheSize?: number;
}

export interface ContextVerifier {
  /**
   * Reads and verifies `x-tessera-context`. No header: `{ user: null }`.
   *
   * @throws {@link ContextError} with `extensions.code = 'UNAUTHENTICATED'` (and `reason` `TOKEN_INVALID`
   * or `TOKEN_EXPIRED`) for a header that is forged, unsigned, expired, addressed to another
   * subgraph or issuer, of another `typ`, or repeated; with `extensions.code =
   * 'SERVICE_UNAVAILABLE'` when the gateway's JWKS cannot be fetched.
   */
  verify(headers: HeadersLike): Promise<VerifiedContext>;
  /**
   * The same for a graphql-ws server (subscriptions the gateway passes through over
   * graphql-transport-ws): reads `x-tessera-context` from the `connection_init` payload, or from
   * the payload of a renewal `ping` the gateway sends before the context expires. No payload, or
   * none in it: `{ user: null }`. Verified and cached exactly as `verify` does.
   *
   * @example
   * ```ts
   * useServer({
   *   schema,
   *   onConnect: async (ctx) => { ctx.extra.user = (await verifier.verifyConnectionParams(ctx.connectionParams)).user; },
   *   onPing: async (ctx, payload) => { if (payload?.['x-tessera-context']) ctx.extra.user = (await verifier.verifyConnectionParams(payload)).user; },
   *   context: (ctx) => ({ user: ctx.extra.user }),
   * }, wsServer);
   * ```
   *
   * @throws {@link ContextError} as `verify` does; a value that is not one string is `TOKEN_INVALID`.
   */
  verifyConnectionParams(params: Readonly<Record<string, unknown>> | null | undefined): Promise<VerifiedContext>;
  /** How many verified tokens the cache holds now (for tests and metrics). */
  readonly cachedTokens: number;
}

const ANONYMOUS: VerifiedContext = Object.freeze({ user: null });

/**
 * Creates a verifier for the gateway's `x-tessera-context` header. The JWKS is fetched on first
 * use and cached; a token signed with a key the cache does not know (the gateway rotated its
 * keys) makes it fetch again, at most once per cooldown.
 */
export function createContextVerifier(options: ContextVerifierOptions): ContextVerifier {
  const tolerance = options.clockToleranceSec ?? 5;
  if (!(tolerance >= 0 && tolerance <= 60)) throw new RangeError('clockToleranceSec must be 0 to 60');
  if (!options.issuer || !options.audience) throw new TypeError('issuer and audience are required');
  const keys: KeyResolver = remoteKeyResolver(options.jwksUrl, {
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.jwksCooldownMs !== undefined ? { cooldownMs: options.jwksCooldownMs } : {}),
  });
  const clock = options.clock ?? { now: () => Date.now() };
  const cache = new VerifiedContextCache(options.cacheSize ?? 10_000, tolerance);

  return {
    get cachedTokens() {
      return cache.size;
    },
    verify(headers) {
      return verifyValue(readHeader(headers));
    },
    verifyConnectionParams(params) {
      if (params === null || params === undefined || typeof params !== 'object') return verifyValue(undefined);
      const raw: unknown = params[CONTEXT_HEADER];
      if (raw === undefined || raw === null) return verifyValue(undefined);
      return verifyValue(typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : null);
    },
  };

  /** A context token's value; undefined when absent (anonymous), null when unusable (refused). */
  async function verifyValue(value: string | null | undefined): Promise<VerifiedContext> {
    if (value === undefined) return ANONYMOUS;
    if (value === null) throw unauthenticated('TOKEN_INVALID');
    const now = clock.now();
    const cached = cache.get(value, now);
    if (cached) return { user: cached };
    const result = await verifyContextToken(value, {
      keys,
      issuer: options.issuer,
      audience: options.audience,
      now,
      clockToleranceSec: tolerance,
    });
    if (result.ok) {
      const { sub, sid, roles, scope, iat, exp, auth_time, email_verified, amr, acr } = result.claims;
      const user: SubgraphUser = Object.freeze({
        id: sub,
        roles: Object.freeze(roles) as string[],
        sessionId: sid,
        scopes: Object.freeze(scope.split(' ').filter(Boolean)) as string[],
        authTime: auth_time ?? null,
        emailVerified: email_verified ?? null,
        amr: Object.freeze([...(amr ?? [])]) as string[],
        acr: acr ?? null,
      });
      cache.set(value, user, { iat, exp }, now);
      return { user };
    }
    if (result.reason === 'KEYS_UNAVAILABLE') {
      throw new ContextError('The gateway keys cannot be fetched.', { code: 'SERVICE_UNAVAILABLE' }, { cause: result.cause });
    }
    throw unauthenticated(result.reason);
  }
}

/**
 * Context tokens that passed verification, by their exact string (a token that differs in any
 * character, a malleated signature included, is verified on its own). An entry is served only
 * while `timeVerdict` (the validator's own time rules) still accepts its times at the injected
 * clock, so a cached token is refused exactly when a fresh verification would refuse it by time;
 * its signature, issuer, audience and claims do not change. Bounded: the oldest entry goes first.
 */
class VerifiedContextCache {
  private readonly entries = new Map<string, { user: SubgraphUser; times: TokenTimes }>();

  constructor(
    private readonly maxEntries: number,
    private readonly toleranceSec: number,
  ) {
    if (!(Number.isInteger(maxEntries) && maxEntries >= 0)) throw new RangeError('cacheSize must be a whole number, 0 or more');
  }

  get size(): number {
    return this.entries.size;
  }

  get(token: string, nowMs: number): SubgraphUser | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (timeVerdict(CONTEXT_TOKEN_CLAIMS, entry.times, Math.floor(nowMs / 1000), this.toleranceSec) !== 'ok') {
      this.entries.delete(token);
      return undefined;
    }
    return entry.user;
  }

  set(token: string, user: SubgraphUser, times: TokenTimes, nowMs: number): void {
    if (this.maxEntries === 0) return;
    // Not before it is acceptable without leeway (a token from a gateway whose clock runs ahead is verified each time).
    if (times.iat > Math.floor(nowMs / 1000)) return;
    this.entries.delete(token);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { user, times });
  }
}

/** The header's one value; undefined when absent; null when repeated (ambiguous, refused). */
function readHeader(headers: HeadersLike): string | null | undefined {
  let raw: string | string[] | null | undefined;
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    raw = (headers as Headers).get(CONTEXT_HEADER);
  } else {
    const record = headers as Record<string, string | string[] | undefined>;
    raw = record[CONTEXT_HEADER];
    if (raw === undefined) {
      const name = Object.keys(record).find((key) => key.toLowerCase() === CONTEXT_HEADER);
      raw = name === undefined ? undefined : record[name];
    }
  }
  if (raw === null || raw === undefined) return undefined;
  if (Array.isArray(raw)) return raw.length === 1 ? raw[0]!.trim() : null;
  // A JWT has no commas: one means the header came twice and was joined.
  return raw.includes(',') ? null : raw.trim();
}

function unauthenticated(reason: 'TOKEN_INVALID' | 'TOKEN_EXPIRED'): ContextError {
  const message = reason === 'TOKEN_EXPIRED' ? 'The gateway context has expired.' : 'The gateway context is not valid.';
  return new ContextError(message, { code: 'UNAUTHENTICATED', reason });
}
