import type { AccountStore } from '../accounts/store.js';
import type { EventOrigin, EventStore, RevokeCause, SecurityEvent } from '../events/types.js';
import type { FactorStore } from '../factors/store.js';
import type { IdentityStore } from '../identity/types.js';

/**
 * The storage verbs Tessera needs. Two implementations pass the same contract tests:
 * `RedisStore` (production) and `MemoryStore` (the embedded, single-process store).
 * Times are epoch milliseconds passed in by the caller (the injected clock).
 * A backend failure surfaces as `StoreUnavailableError`.
 *
 * Every step that changes something with a security event (docs/contract.md section 10)
 * appends the event in the same atomic step: a change is never stored without its event, nor an
 * event without its change. The steps take the `EventOrigin` of the request that caused them.
 */

export interface UserRecord {
  id: string;
  /** Normalized (trimmed, NFC, lower-cased). */
  email: string;
  /** argon2id hash; null for an account with no password (`hasPassword: false`, e.g. signed up through an identity provider). */
  passwordHash: string | null;
  roles: string[];
  createdAt: number;
  /** The user proved they receive mail at `email` (a verification link, a reset, a provider's assertion). */
  emailVerified: boolean;
  /** An administrator disabled the account: no login, no refresh. */
  disabled: boolean;
}

/** RFC 8176 authentication method references (`amr`), as the contract names them. */
export type AuthMethod = 'pwd' | 'otp' | 'hwk' | 'swk' | 'mfa' | 'fed';

/** The authentication assurance level of a session (`acr`). */
export type AssuranceLevel = 'aal1' | 'aal2';

/**
 * How the user proved who they are in a session, as its access tokens say (`auth_time`, `amr`,
 * `acr`): set when the session starts, kept by every refresh, renewed by a re-authentication.
 */
export interface SessionAuthentication {
  /** Epoch ms: the last time the user proved a credential in this session. */
  authTime: number;
  /** RFC 8176 values, e.g. `['pwd']`, `['pwd', 'otp', 'mfa']`. */
  amr: string[];
  acr: AssuranceLevel;
}

export interface SessionRecord {
  id: string;
  userId: string;
  createdAt: number;
  lastRefreshedAt: number;
  /** When the session ends if never refreshed again: min(last refresh + idle TTL, absolute end). */
  expiresAt: number;
  /** No refresh goes past this. */
  absoluteExpiresAt: number;
  userAgent: string | null;
  ipAddress: string | null;
  /** Generation of the live refresh token (0 for the one issued at login). */
  generation: number;
  /** Epoch ms: the last time the user proved a credential in this session (`auth_time`). */
  authTime: number;
  /** RFC 8176 method references of that proof (`amr`). */
  amr: string[];
  acr: AssuranceLevel;
}

export interface SessionRef {
  userId: string;
  sessionId: string;
}

export interface CreateSessionInput extends SessionRef {
  /** Hash of the generation-0 refresh secret; the secret itself is never stored. */
  secretHash: string;
  now: number;
  idleTtlMs: number;
  absoluteTtlMs: number;
  userAgent: string | null;
  ipAddress: string | null;
  /**
   * At most this many live sessions per user: when the user already has this many, the oldest
   * (first created) end to make room, revoked and pushed on the revocation feed like a revoke.
   */
  maxSessions: number;
  /** For `session.created` (and `session.revoked`, cause `evicted`, of the sessions it ends). */
  origin: EventOrigin;
  /** How the user signed in (authTime is usually `now`). */
  auth: SessionAuthentication;
}

/** A re-authentication within a live session: the new proof, and a new live refresh secret. */
export interface ReauthenticateInput extends SessionRef {
  auth: SessionAuthentication;
  /**
   * Hash of the new live refresh secret. It replaces the live one at the same generation (the
   * presented-before token stops working, as REFRESH_TOKEN_INVALID, never as a replay), and the
   * predecessor's grace answer is dropped.
   */
  nextSecretHash: string;
  now: number;
}

/** What a presented refresh token proves: a session, a generation and the hash of its secret. */
export interface RefreshProof extends SessionRef {
  generation: number;
  secretHash: string;
}

export interface RotateInput extends SessionRef {
  /** Generation claimed by the presented token. */
  generation: number;
  /** Hash of the presented secret. */
  secretHash: string;
  /** Hash of the successor secret, stored if this call rotates. */
  nextSecretHash: string;
  /** The successor secret sealed under a key derived from the presented secret (for the grace answer). */
  sealedSuccessor: string;
  now: number;
  idleTtlMs: number;
  /** Reuse grace window; 0 turns it off. */
  graceMs: number;
  /** For `session.reuse_detected` and `session.revoked` (cause `reuse`) when this is a replay. */
  origin: EventOrigin;
}

/** Who ends sessions, and why (`session.revoked` details.cause). */
export interface RevokeAudit {
  origin: EventOrigin;
  cause: RevokeCause;
}

export type RotateResult =
  /** The presented token was live; it is now rotated to `generation` (= presented + 1). `user` is read in the same step. */
  | { status: 'rotated'; session: SessionRecord; user: UserRecord | null }
  /** The presented token is the immediate predecessor, rotated within the grace window: the live successor is `sealedSuccessor`. */
  | { status: 'grace'; session: SessionRecord; sealedSuccessor: string; user: UserRecord | null }
  /** A rotated token presented again outside the grace rules: the store has revoked the session (and pushed its id). */
  | { status: 'reused' }
  /** The session ended by time (idle or absolute); the store removed it. */
  | { status: 'expired' }
  /** Unknown session, or a secret that does not match: nothing was changed. */
  | { status: 'invalid' };

export interface SessionStore {
  createSession(input: CreateSessionInput): Promise<SessionRecord>;
  /** Check and rotate in one atomic step. */
  rotateSession(input: RotateInput): Promise<RotateResult>;
  /** Live sessions by reference, in order; null where a session is gone or ended by `now`. One round trip. */
  getSessions(refs: readonly SessionRef[], now: number): Promise<(SessionRecord | null)[]>;
  /** The user's live sessions (any order); prunes ended ones from the user's index. */
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** True when the session existed and is now revoked. Pushes the id to revocation subscribers in the same atomic step. */
  revokeSession(ref: SessionRef, now: number, audit: RevokeAudit): Promise<boolean>;
  /** Ids of the sessions revoked, pushed to revocation subscribers in the same atomic step. */
  revokeAllSessions(userId: string, now: number, audit: RevokeAudit): Promise<string[]>;
  /**
   * Revokes the session only for the holder of its live refresh token or of its immediate
   * predecessor (logout with a refresh cookie); anything else revokes nothing and answers false.
   * Its event's cause is `logout`.
   */
  revokeSessionWithToken(proof: RefreshProof, now: number, origin: EventOrigin): Promise<boolean>;
  /**
   * Renews a live session's authentication (`auth_time`, `amr`, `acr`) and its live refresh
   * secret in one atomic step; null when the session is not live (nothing changed).
   */
  reauthenticateSession(input: ReauthenticateInput): Promise<SessionRecord | null>;
}

export interface UserStore {
  /** 'email_taken' when another account has the email; nothing is written then. Records `user.signed_up`. */
  createUser(user: UserRecord, origin: EventOrigin): Promise<'created' | 'email_taken'>;
  findUserByEmail(email: string): Promise<UserRecord | null>;
  /** In order; null where unknown. One round trip. */
  getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]>;
}

/**
 * Revoked session ids, pushed to every gateway instance sharing the store. The push happens
 * inside the store's revoking step itself, so a revocation is never stored without being pushed.
 */
export interface RevocationLog {
  /**
   * Start listening. `onRevoked` gets pushed ids; `onHealth(true)` is called once the
   * subscription is live (after any reconnect), `onHealth(false)` when it may be missing messages.
   */
  subscribe(handlers: { onRevoked(ids: string[]): void; onHealth(healthy: boolean): void }): Promise<void>;
}

/** Called with live session events (see LiveEventFeed); must not throw. */
export type LiveEventListener = (events: readonly SecurityEvent[]) => void;

/**
 * The session events (`session.created`, `session.revoked`, `password.changed`) of every instance
 * sharing the store, as their steps store them: what `Subscription.sessionEvents` is made of.
 * Redis publishes each in the step that appends it; the embedded store is one process, so its
 * own steps are all there is. At most once: events of a time the feed was down are not replayed.
 */
export interface LiveEventFeed {
  /** Resolves once listening; returns the function that stops it. */
  subscribeLiveEvents(listener: LiveEventListener): Promise<() => void>;
}

/** Counters that expire: failed logins. */
export interface CounterStore {
  /**
   * Add `by` (default 1; negative to take back) to `key`; the window starts at the first
   * increment. Returns the count and ms left in the window.
   */
  increment(key: string, windowMs: number, now: number, by?: number): Promise<{ count: number; resetInMs: number }>;
  peek(key: string, now: number): Promise<{ count: number; resetInMs: number }>;
  reset(key: string): Promise<void>;
}

export interface Store extends SessionStore, UserStore, AccountStore, RevocationLog, LiveEventFeed, CounterStore, EventStore, FactorStore, IdentityStore {
  readonly kind: 'redis' | 'memory';
  /** Resolves when the backend answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
