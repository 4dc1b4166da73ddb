import {
  type ChannelLike,
  defaultChannel,
  defaultLocks,
  defaultStorage,
  defaultTimers,
  type FetchLike,
  type LockManagerLike,
  type StorageLike,
  type TimersLike,
} from './environment.js';
import { type AccessTokenClaims, decodeAccessToken } from './jwt.js';
import {
  AuthClientError,
  type AuthPayload,
  type GraphQLResult,
  LOGIN,
  postOperation,
  reasonOf,
  REFRESH,
  REFRESH_FAILURES,
  REVOKE_ALL,
  REVOKE_CURRENT,
  type SessionInfo,
  SIGNUP,
  type User,
} from './operations.js';

export type Transport = 'body' | 'cookie';

export interface AuthClientOptions {
  /** The gateway's GraphQL endpoint, e.g. `https://auth.example.com/graphql`. */
  url: string;
  /**
   * Where the refresh token travels, as the gateway's REFRESH_TOKEN_TRANSPORT says:
   * `cookie` (recommended for browsers): an HttpOnly cookie the client never sees, sent with
   * `credentials: 'include'`; `body`: in the GraphQL answer, kept by the client in `storage`.
   */
  transport: Transport;
  /** Default: the global `fetch`. */
  fetch?: FetchLike;
  /**
   * Where the session's tokens are kept so every tab of the origin shares them. Default:
   * `localStorage` in a browser, else a page-lifetime memory storage. In `body` mode it holds the
   * refresh token (readable by any script on the origin: see the README on XSS); in `cookie` mode
   * only the short-lived access token.
   */
  storage?: StorageLike;
  /** The storage key and the lock and channel names. Default: derived from `url`. */
  name?: string;
  /** Default: `navigator.locks` where it exists. `null`: no cross-tab lock (single flight per page only). */
  locks?: LockManagerLike | null;
  /** Default: `new BroadcastChannel(name)` in a browser. `null`: no messages between tabs. */
  channel?: ChannelLike | null;
  /** Milliseconds since the epoch. Default: `Date.now`. */
  now?: () => number;
  /** Default: the global `setTimeout` / `clearTimeout`. */
  timers?: TimersLike;
  /**
   * How long before the access token expires it is refreshed, at most (ms); never more than a
   * quarter of the token's lifetime. Default 30 000.
   */
  refreshBeforeMs?: number;
  /** How long to wait before trying again after a refresh that failed on the network (ms). Default 5 000. */
  retryDelayMs?: number;
}

/** Why a session ended. */
export type SessionEndReason =
  | 'LOGGED_OUT'
  | 'REFRESH_TOKEN_INVALID'
  | 'REFRESH_TOKEN_EXPIRED'
  | 'REFRESH_TOKEN_REUSED'
  | 'SESSION_REVOKED'
  | 'TOKEN_INVALID';

export interface SessionEnded {
  reason: SessionEndReason;
  /** True when another tab of the origin saw it end (and told this one). */
  fromOtherTab: boolean;
}

/** What the client knows of the signed-in session: the access token's claims. */
export interface Session {
  userId: string;
  sessionId: string;
  roles: string[];
  scope: string;
  /** When the access token expires, on this machine's clock (ms since the epoch). */
  expiresAt: number;
}

export interface SignedIn {
  user: User;
  session: SessionInfo;
}

export interface AuthClient {
  readonly url: string;
  readonly transport: Transport;
  /** The current session, or null when signed out. */
  readonly session: Session | null;
  signup(credentials: { email: string; password: string }): Promise<SignedIn>;
  login(credentials: { email: string; password: string }): Promise<SignedIn>;
  /**
   * Picks up the session of the origin: another tab's tokens from `storage`, or else a refresh
   * (cookie mode: with the cookie, if there is one; body mode: with a stored refresh token).
   * Null when there is no session; never throws for a missing or malformed one.
   */
  restore(): Promise<Session | null>;
  /** A new access token now (single flight in the page, one for all tabs of the origin). Null when the session is over. */
  refresh(): Promise<Session | null>;
  /** A usable access token (refreshed first when it is about to expire), or null when signed out. */
  getAccessToken(): Promise<string | null>;
  /** Ends this session at the gateway and in every tab. Resolves true when the gateway confirmed it. */
  logout(): Promise<boolean>;
  /** Ends every session of the user at the gateway, and this one in every tab; the number ended. */
  logoutEverywhere(): Promise<number>;
  /**
   * `fetch` with `Authorization: Bearer <token>` added for requests to the gateway's origin, and
   * retried once with a refreshed token when the gateway answers `TOKEN_EXPIRED`.
   */
  fetch: FetchLike;
  /** Called when the session ends: logout here or in another tab, a refused refresh, a revoked session. */
  onSessionEnded(listener: (ended: SessionEnded) => void): () => void;
  /** Called whenever `session` changes (signed in, tokens renewed, signed out). */
  onChange(listener: (session: Session | null) => void): () => void;
  /** Stops the proactive refresh and leaves the channel. */
  close(): void;
}

/** What tabs share in storage and over the channel. */
interface SharedTokens {
  v: 1;
  accessToken: string;
  /** Body mode only. */
  refreshToken?: string;
  /** On this machine's clock. */
  expiresAt: number;
  lifetimeMs: number;
}

type Message = { type: 'tokens'; tokens: SharedTokens } | { type: 'ended'; reason: SessionEndReason; sessionId?: string };

interface Current {
  tokens: SharedTokens;
  claims: AccessTokenClaims;
}

const DEFAULT_REFRESH_BEFORE_MS = 30_000;
const DEFAULT_RETRY_DELAY_MS = 5_000;
/** How long a tab that waited on the lock gives the previous holder's new tokens to arrive. */
const HANDOFF_WAIT_MS = 1_000;

export function createAuthClient(options: AuthClientOptions): AuthClient {
  return new TesseraAuthClient(options);
}

function parseShared(raw: unknown): SharedTokens | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const value = raw as Partial<SharedTokens>;
  if (value.v !== 1 || typeof value.accessToken !== 'string' || typeof value.expiresAt !== 'number' || typeof value.lifetimeMs !== 'number') return null;
  if (value.refreshToken !== undefined && typeof value.refreshToken !== 'string') return null;
  return value as SharedTokens;
}

function parseMessage(data: unknown): Message | null {
  if (typeof data !== 'object' || data === null) return null;
  const message = data as { type?: unknown; tokens?: unknown; reason?: unknown; sessionId?: unknown };
  if (message.type === 'tokens') {
    const tokens = parseShared(message.tokens);
    return tokens ? { type: 'tokens', tokens } : null;
  }
  if (message.type === 'ended' && typeof message.reason === 'string') {
    return { type: 'ended', reason: message.reason as SessionEndReason, ...(typeof message.sessionId === 'string' ? { sessionId: message.sessionId } : {}) };
  }
  return null;
}

/**
 * For `./ws` (not exported from the package): a socket of session `sessionId` was closed 4403 by
 * the gateway, so that session is over; ended everywhere unless the client has signed in anew
 * meanwhile. False when `client` is not this package's.
 */
export let endRevokedSession: (client: AuthClient, sessionId: string) => boolean = () => false;

class TesseraAuthClient implements AuthClient {
  static {
    endRevokedSession = (client, sessionId) => {
      if (!(client instanceof TesseraAuthClient)) return false;
      // A logout of this session is under way: its own revocation closed the socket; it ends as LOGGED_OUT.
      if (client.#current?.claims.sid === sessionId && client.#loggingOut !== sessionId) client.#end('SESSION_REVOKED', { broadcast: true });
      return true;
    };
  }
  readonly url: string;
  readonly transport: Transport;
  readonly #origin: string;
  readonly #fetch: FetchLike;
  readonly #storage: StorageLike;
  readonly #key: string;
  readonly #lockName: string;
  readonly #locks: LockManagerLike | null;
  readonly #channel: ChannelLike | null;
  readonly #now: () => number;
  readonly #timers: TimersLike;
  readonly #refreshBeforeMs: number;
  readonly #retryDelayMs: number;
  #current: Current | null = null;
  #session: Session | null = null;
  #inflight: Promise<Session | null> | undefined;
  #timer: unknown;
  #closed = false;
  /** The session a logout is ending (until it has). */
  #loggingOut: string | undefined;
  readonly #endedListeners = new Set<(ended: SessionEnded) => void>();
  readonly #changeListeners = new Set<(session: Session | null) => void>();
  readonly #changeWaiters = new Set<() => void>();
  readonly #onMessage = (event: { data: unknown }) => this.#receive(event.data);

  constructor(options: AuthClientOptions) {
    if (options.transport !== 'body' && options.transport !== 'cookie') throw new TypeError("createAuthClient: transport must be 'body' or 'cookie'");
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    const url = new URL(options.url, base);
    this.url = url.href;
    this.#origin = url.origin;
    this.transport = options.transport;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('createAuthClient: no fetch available; pass options.fetch');
    this.#fetch = (input, init) => fetchImpl(input, init);
    this.#storage = options.storage ?? defaultStorage();
    const name = options.name ?? `tessera:${this.url}`;
    this.#key = name;
    this.#lockName = `${name}:refresh`;
    this.#locks = options.locks === undefined ? defaultLocks() : options.locks;
    this.#channel = options.channel === undefined ? defaultChannel(name) : options.channel;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? defaultTimers;
    this.#refreshBeforeMs = options.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS;
    this.#retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    this.#channel?.addEventListener('message', this.#onMessage);
    // Another tab's session, if one is stored (a malformed one is no session).
    const stored = this.#readShared();
    if (stored) this.#adopt(stored, 'storage');
  }

  /** The same object until the session changes (so it can be a React external store's snapshot). */
  get session(): Session | null {
    return this.#session;
  }

  // ---- signing in

  signup(credentials: { email: string; password: string }): Promise<SignedIn> {
    return this.#signIn(SIGNUP, 'signup', credentials);
  }

  login(credentials: { email: string; password: string }): Promise<SignedIn> {
    return this.#signIn(LOGIN, 'login', credentials);
  }

  async #signIn(query: string, field: 'login' | 'signup', credentials: { email: string; password: string }): Promise<SignedIn> {
    const result = await postOperation<Record<string, AuthPayload>>(this.#fetch, this.url, query, { email: credentials.email, password: credentials.password }, { cookies: this.#cookies });
    const payload = result.data?.[field];
    if (!payload) throw this.#errorOf(result);
    this.#accept(payload);
    return { user: payload.user, session: payload.session };
  }

  async restore(): Promise<Session | null> {
    const stored = this.#readShared();
    if (stored && this.#adopt(stored, 'storage') && !this.#expiringSoon(stored)) return this.session;
    if (this.transport === 'body' && !this.#current?.tokens.refreshToken && !stored?.refreshToken) return null;
    try {
      return await this.refresh();
    } catch {
      // The gateway cannot be reached now: what there is (possibly nothing) stands.
      return this.session;
    }
  }

  // ---- refreshing

  refresh(): Promise<Session | null> {
    return this.#refreshUnless(this.#current?.tokens.accessToken ?? null);
  }

  /**
   * A refresh, unless the token in hand is no longer `stale` (another request of this page, or
   * another tab, already replaced it). Single flight in the page; under the origin's lock across tabs.
   */
  #refreshUnless(stale: string | null): Promise<Session | null> {
    if (this.#current && this.#current.tokens.accessToken !== stale) return Promise.resolve(this.session);
    this.#inflight ??= this.#refreshAcrossTabs(stale).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #refreshAcrossTabs(stale: string | null): Promise<Session | null> {
    const locks = this.#locks;
    if (!locks) return this.#refreshUnderLock(stale, false);
    // The lock at once if it is free; if another tab holds it (it is refreshing), wait for it.
    const WAIT = Symbol('wait');
    const first = await locks.request(this.#lockName, { ifAvailable: true }, async (lock) => (lock ? this.#refreshUnderLock(stale, false) : WAIT));
    if (first !== WAIT) return first;
    return locks.request(this.#lockName, {}, () => this.#refreshUnderLock(stale, true));
  }

  /**
   * Under the origin's lock: a tab that waited on it first looks whether the tab before it
   * refreshed already (its message, or the shared storage), and uses that token. Storage and
   * messages reach other tabs' processes on their own paths, not in step with the lock, so a tab
   * that waited and sees nothing new yet gives the message a moment to arrive before it refreshes.
   */
  async #refreshUnderLock(stale: string | null, waited: boolean): Promise<Session | null> {
    const renewed = (): boolean => {
      const current = this.#current;
      if (current && current.tokens.accessToken !== stale && !this.#expiringSoon(current.tokens)) return true;
      const shared = this.#readShared();
      return shared !== null && shared.accessToken !== stale && !this.#expiringSoon(shared) && this.#adopt(shared, 'storage');
    };
    const hadSession = this.#current !== null;
    if (renewed()) return this.session;
    if (waited && this.#channel) {
      await this.#nextChange(HANDOFF_WAIT_MS);
      if (renewed()) return this.session;
      // The other tab's refresh was refused: the session is over (it told every tab).
      if (hadSession && !this.#current) return null;
    }
    return this.#refreshOverNetwork(this.#readShared());
  }

  /** Resolves at the next change of the session (or after `ms`). */
  #nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#timers.clearTimeout(timer);
        this.#changeWaiters.delete(done);
        resolve();
      };
      const timer = this.#timers.setTimeout(done, ms);
      this.#changeWaiters.add(done);
    });
  }

  async #refreshOverNetwork(shared: SharedTokens | null): Promise<Session | null> {
    const hadSession = this.#current !== null || shared !== null;
    const refreshToken = this.transport === 'body' ? (shared?.refreshToken ?? this.#current?.tokens.refreshToken) : undefined;
    if (this.transport === 'body' && !refreshToken) {
      if (hadSession) this.#end('REFRESH_TOKEN_INVALID', { broadcast: true });
      return null;
    }
    const result = await postOperation<{ refreshToken: AuthPayload }>(
      this.#fetch,
      this.url,
      REFRESH,
      { refreshToken: this.transport === 'body' ? refreshToken : null },
      { cookies: this.#cookies },
    );
    const payload = result.data?.refreshToken;
    if (payload) {
      this.#accept(payload);
      return this.session;
    }
    const reason = reasonOf(result);
    if (reason && REFRESH_FAILURES.has(reason)) {
      if (hadSession) this.#end(reason as SessionEndReason, { broadcast: true });
      else this.#clear();
      return null;
    }
    throw this.#errorOf(result);
  }

  async getAccessToken(): Promise<string | null> {
    if (!this.#current) {
      const stored = this.#readShared();
      if (stored) this.#adopt(stored, 'storage');
    }
    const current = this.#current;
    if (!current) return null;
    if (this.#expiringSoon(current.tokens)) {
      try {
        await this.#refreshUnless(current.tokens.accessToken);
      } catch {
        // Not reachable now: the token in hand may still do (the gateway says TOKEN_EXPIRED if not).
      }
    }
    return this.#current?.tokens.accessToken ?? null;
  }

  // ---- signing out

  async logout(): Promise<boolean> {
    const token = await this.getAccessToken();
    // Cookie mode can log out with the cookie alone; body mode needs a live access token.
    let confirmed = false;
    this.#loggingOut = this.#current?.claims.sid;
    if (token || this.transport === 'cookie') {
      try {
        const result = await postOperation<{ revokeSession: boolean }>(this.#fetch, this.url, REVOKE_CURRENT, {}, { token, cookies: this.#cookies });
        confirmed = result.data?.revokeSession === true;
      } catch {
        // Logged out here all the same; the session ends at the gateway by itself.
      }
    }
    this.#loggingOut = undefined;
    this.#end('LOGGED_OUT', { broadcast: true });
    return confirmed;
  }

  async logoutEverywhere(): Promise<number> {
    const token = await this.getAccessToken();
    if (!token) throw new AuthClientError('UNAUTHENTICATED', 'Not signed in.', 'TOKEN_MISSING');
    const result = await postOperation<{ revokeAllSessions: number }>(this.#fetch, this.url, REVOKE_ALL, {}, { token, cookies: this.#cookies });
    const count = result.data?.revokeAllSessions;
    if (typeof count !== 'number') throw this.#errorOf(result);
    this.#end('LOGGED_OUT', { broadcast: true });
    return count;
  }

  // ---- fetch

  readonly fetch: FetchLike = async (input, init) => {
    const request = typeof input === 'object' && 'url' in input && !(input instanceof URL) ? input : null;
    const target = new URL(request ? request.url : String(input), (globalThis as { location?: { href?: string } }).location?.href ?? this.url);
    if (target.origin !== this.#origin) return this.#fetch(input, init);
    const spare = request?.clone();
    const send = (token: string | null, source: Request | string | URL) => {
      const headers = new Headers(init?.headers ?? (request ? request.headers : undefined));
      if (token) headers.set('authorization', `Bearer ${token}`);
      return this.#fetch(source, { ...init, headers });
    };
    const token = await this.getAccessToken();
    const response = await send(token, input);
    const reason = await authReasonOf(response);
    if (reason === 'TOKEN_EXPIRED' && token) {
      const renewed = await this.#refreshUnless(token).catch(() => null);
      const next = this.#current?.tokens.accessToken;
      if (renewed && next && next !== token) {
        const retried = await send(next, spare ?? input);
        if ((await authReasonOf(retried)) === 'SESSION_REVOKED') this.#end('SESSION_REVOKED', { broadcast: true });
        return retried;
      }
    } else if (reason === 'SESSION_REVOKED' && token && this.#current?.tokens.accessToken === token) {
      this.#end('SESSION_REVOKED', { broadcast: true });
    }
    return response;
  };

  // ---- listeners

  onSessionEnded(listener: (ended: SessionEnded) => void): () => void {
    this.#endedListeners.add(listener);
    return () => this.#endedListeners.delete(listener);
  }

  onChange(listener: (session: Session | null) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    this.#schedule(null);
    this.#channel?.removeEventListener('message', this.#onMessage);
    this.#channel?.close();
  }

  // ---- state

  get #cookies(): boolean {
    return this.transport === 'cookie';
  }

  #errorOf(result: GraphQLResult<unknown>): AuthClientError {
    const first = result.errors?.[0];
    return first ? AuthClientError.from(first) : new AuthClientError('BAD_RESPONSE', 'The gateway answered without data or errors.');
  }

  /** How long before expiry a token of this lifetime is renewed. */
  #leeway(tokens: SharedTokens): number {
    return Math.min(this.#refreshBeforeMs, tokens.lifetimeMs / 4);
  }

  #expiringSoon(tokens: SharedTokens): boolean {
    return tokens.expiresAt - this.#now() <= this.#leeway(tokens);
  }

  /** A fresh AuthPayload: kept, shared with the other tabs, its renewal scheduled. */
  #accept(payload: AuthPayload): void {
    const claims = decodeAccessToken(payload.accessToken);
    if (!claims) {
      this.#clear();
      throw new AuthClientError('BAD_RESPONSE', 'The gateway answered with an access token the client cannot read.', 'TOKEN_INVALID');
    }
    const lifetimeMs = (claims.exp - claims.iat) * 1000;
    const tokens: SharedTokens = { v: 1, accessToken: payload.accessToken, expiresAt: this.#now() + lifetimeMs, lifetimeMs };
    if (this.transport === 'body') {
      if (typeof payload.refreshToken !== 'string' || payload.refreshToken === '') {
        this.#clear();
        throw new AuthClientError('BAD_RESPONSE', "The gateway sent no refresh token: is its REFRESH_TOKEN_TRANSPORT 'cookie'? Use transport: 'cookie'.");
      }
      tokens.refreshToken = payload.refreshToken;
    }
    this.#set({ tokens, claims });
    this.#writeShared(tokens);
    this.#post({ type: 'tokens', tokens });
  }

  /**
   * Takes tokens another tab obtained. False when they are unreadable: from storage, that is no
   * session (cleared); from a message, it is ignored.
   */
  #adopt(tokens: SharedTokens, from: 'storage' | 'message'): boolean {
    const claims = decodeAccessToken(tokens.accessToken);
    if (!claims || (this.transport === 'body' && !tokens.refreshToken)) {
      if (from === 'storage') this.#storage.removeItem(this.#key);
      return false;
    }
    if (this.#current?.tokens.accessToken === tokens.accessToken) return true;
    this.#set({ tokens, claims });
    return true;
  }

  #set(current: Current | null): void {
    this.#current = current;
    this.#session = current
      ? Object.freeze({ userId: current.claims.sub, sessionId: current.claims.sid, roles: current.claims.roles, scope: current.claims.scope, expiresAt: current.tokens.expiresAt })
      : null;
    this.#schedule(current);
    const session = this.session;
    for (const waiter of [...this.#changeWaiters]) waiter();
    for (const listener of [...this.#changeListeners]) listener(session);
  }

  /** Signed out here, without telling anyone (nothing was signed in, or the stored tokens were unreadable). */
  #clear(): void {
    this.#storage.removeItem(this.#key);
    if (this.#current) this.#set(null);
  }

  #end(reason: SessionEndReason, options: { broadcast: boolean; fromOtherTab?: boolean }): void {
    const had = this.#current !== null;
    this.#storage.removeItem(this.#key);
    const sessionId = this.#current?.claims.sid;
    if (options.broadcast) this.#post({ type: 'ended', reason, ...(sessionId ? { sessionId } : {}) });
    // Nothing was signed in here: nothing ended here either.
    if (!had) return;
    this.#set(null);
    const ended: SessionEnded = { reason, fromOtherTab: options.fromOtherTab === true };
    for (const listener of [...this.#endedListeners]) listener(ended);
  }

  #receive(data: unknown): void {
    if (this.#closed) return;
    const message = parseMessage(data);
    if (!message) return;
    if (message.type === 'tokens') this.#adopt(message.tokens, 'message');
    // The end of another session (a tab signed in anew meanwhile) is not this one's.
    else if (!message.sessionId || !this.#current || message.sessionId === this.#current.claims.sid) this.#end(message.reason, { broadcast: false, fromOtherTab: true });
  }

  #post(message: Message): void {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // a closed channel: nobody to tell
    }
  }

  #readShared(): SharedTokens | null {
    let raw: string | null;
    try {
      raw = this.#storage.getItem(this.#key);
    } catch {
      return null;
    }
    if (raw === null) return null;
    try {
      const tokens = parseShared(JSON.parse(raw));
      if (tokens) return tokens;
    } catch {
      // not JSON: treated as no session
    }
    this.#storage.removeItem(this.#key);
    return null;
  }

  #writeShared(tokens: SharedTokens): void {
    try {
      this.#storage.setItem(this.#key, JSON.stringify(tokens));
    } catch {
      // storage full or blocked: this tab keeps the tokens in memory
    }
  }

  /** The proactive refresh: shortly before the access token expires (and again after a network failure). */
  #schedule(current: Current | null, delayMs?: number): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!current || this.#closed) return;
    const due = delayMs ?? Math.max(0, current.tokens.expiresAt - this.#leeway(current.tokens) - this.#now());
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed || this.#current !== current) return;
      this.#refreshUnless(current.tokens.accessToken).catch(() => {
        if (this.#current === current) this.#schedule(current, this.#retryDelayMs);
      });
    }, due);
  }
}

/** The auth reason of a gateway answer (`extensions.reason` of its errors), without consuming the body. */
async function authReasonOf(response: Response): Promise<string | undefined> {
  if (!/json/i.test(response.headers.get('content-type') ?? '')) return undefined;
  try {
    const body = (await response.clone().json()) as GraphQLResult<unknown>;
    const reasons = (body?.errors ?? []).map((error) => error?.extensions?.reason);
    if (reasons.includes('TOKEN_EXPIRED')) return 'TOKEN_EXPIRED';
    if (reasons.includes('SESSION_REVOKED')) return 'SESSION_REVOKED';
    return undefined;
  } catch {
    return undefined;
  }
}
