import { EventEmitter } from 'node:events';
import { retryDelayMs } from '../events/backoff.js';
import { compareEntryIds } from '../events/cursor.js';
import { eventId, newEventStepId } from '../events/eventIds.js';
import { type EventSource, readNewestFirst } from '../events/eventPages.js';
import {
  type AuditQuery,
  type ClaimRequest,
  type Delivery,
  type EventDetails,
  type EventInput,
  type EventListener,
  type EventOrigin,
  type EventPage,
  type EventPageRequest,
  type SecurityEvent,
  type SecurityEventType,
  LIVE_EVENT_TYPES,
  type StoredEvent,
  USER_EVENTS_MAX,
} from '../events/types.js';
import type { FlowRecordKind, IdentityRecord, LinkInput, LinkResult, UnlinkResult } from '../identity/types.js';
import { MemoryIdentities } from './identityMemory.js';
import type { ChangedUser, DeletedUser, IssueMailTokenInput, MailTokenProof, UserPage } from '../accounts/store.js';
import type { MailTokenKind } from '../tokens/mailTokens.js';
import type {
  LiveEventListener,
  CreateSessionInput,
  ReauthenticateInput,
  RefreshProof,
  RevokeAudit,
  RotateInput,
  RotateResult,
  SessionRecord,
  SessionRef,
  Store,
  UserRecord,
} from './types.js';
import type { FactorStore } from '../factors/store.js';
import { MemoryFactors } from './factorsMemory.js';

interface StoredSession extends SessionRecord {
  secretHash: string;
  previousHash: string | null;
  rotatedAt: number;
  sealedSuccessor: string | null;
}

/** The kinds of mail token a user may hold (one each: a new one supersedes). */
const MAIL_TOKEN_KINDS = ['reset', 'verify', 'change'] as const;

/** Sweep ended records every this many writes, so an idle process does not keep them forever. */
const SWEEP_EVERY = 500;

export interface MemoryStoreOptions {
  /** AUDIT_STREAM_MAX: the audit list keeps this many events, the newest (default 100 000). */
  auditStreamMax?: number;
  /** Events kept per user for `securityEvents` (default USER_EVENTS_MAX). */
  userEventsMax?: number;
}

/** The one audit "stream" of the embedded store, as deliveryStreams() names it. */
const AUDIT_LIST = 'audit';

interface PendingDelivery {
  consumer: string;
  /** When its last attempt began (the caller's clock). */
  claimedAt: number;
  attempts: number;
}

/** A list of events in entry-id order, trimmed from the front, with its entries by id. */
class EventList {
  readonly entries: StoredEvent[] = [];
  readonly byId = new Map<string, StoredEvent>();

  constructor(private readonly max: number) {}

  push(entry: StoredEvent): void {
    this.entries.push(entry);
    this.byId.set(entry.position.id, entry);
    if (this.entries.length > this.max) {
      for (const dropped of this.entries.splice(0, this.entries.length - this.max)) this.byId.delete(dropped.position.id);
    }
  }

  /** Newest first, as a source of readNewestFirst. */
  source(name = ''): EventSource {
    return {
      name,
      read: async (bound, count) => {
        // The index just past the last entry inside the bound.
        let end = this.entries.length;
        if (bound !== null) {
          let lo = 0;
          let hi = this.entries.length;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            const c = compareEntryIds(this.entries[mid]!.position.id, bound.id);
            if (c < 0 || (c === 0 && bound.inclusive)) lo = mid + 1;
            else hi = mid;
          }
          end = lo;
        }
        return this.entries.slice(Math.max(0, end - count), end).reverse();
      },
    };
  }
}

/**
 * The embedded store: everything in this process. For development and tests only (refused in
 * production); it obeys the same contract as the Redis store, and the same tests run on both.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly users = new Map<string, UserRecord>();
  private readonly emails = new Map<string, string>();
  private readonly sessions = new Map<string, StoredSession>();
  private readonly indexes = new Map<string, Set<string>>();
  private readonly counters = new Map<string, { count: number; endsAt: number }>();
  /** The newest mail token of each kind, by `<userId>:<kind>`. */
  private readonly mailTokens = new Map<string, { hash: string; expiresAt: number; email: string }>();
  private readonly feed = new EventEmitter();
  private writes = 0;
  private readonly audit: EventList;
  private readonly userEventsMax: number;
  private readonly userStreams = new Map<string, EventList>();
  private readonly groups = new Map<string, { lastDelivered: string; pending: Map<string, PendingDelivery> }>();
  private readonly listeners = new Set<EventListener>();
  private readonly liveListeners = new Set<LiveEventListener>();
  private lastEntryMs = 0;
  private lastEntrySeq = 0;
  private readonly factors = new MemoryFactors((step, events) => void this.record(step, events));

  // Second factors (src/factors/store.ts): delegated to factorsMemory.ts.
  listFactors: FactorStore['listFactors'] = (...a) => this.factors.listFactors(...a);
  countRecoveryCodes: FactorStore['countRecoveryCodes'] = (...a) => this.factors.countRecoveryCodes(...a);
  putPendingTotp: FactorStore['putPendingTotp'] = (...a) => this.factors.putPendingTotp(...a);
  getPendingTotp: FactorStore['getPendingTotp'] = (...a) => this.factors.getPendingTotp(...a);
  activateTotp: FactorStore['activateTotp'] = (...a) => this.factors.activateTotp(...a);
  addPasskey: FactorStore['addPasskey'] = (...a) => this.factors.addPasskey(...a);
  replaceRecoveryCodes: FactorStore['replaceRecoveryCodes'] = (...a) => this.factors.replaceRecoveryCodes(...a);
  removeFactor: FactorStore['removeFactor'] = (...a) => this.factors.removeFactor(...a);
  useFactor: FactorStore['useFactor'] = (...a) => this.factors.useFactor(...a);
  createMfaTicket: FactorStore['createMfaTicket'] = (...a) => this.factors.createMfaTicket(...a);
  beginMfaAttempt: FactorStore['beginMfaAttempt'] = (...a) => this.factors.beginMfaAttempt(...a);
  completeMfa: FactorStore['completeMfa'] = (...a) => this.factors.completeMfa(...a);
  putChallenge: FactorStore['putChallenge'] = (...a) => this.factors.putChallenge(...a);
  takeChallenge: FactorStore['takeChallenge'] = (...a) => this.factors.takeChallenge(...a);
  /** Sign-in with other providers (identityMemory.ts). */
  private readonly identities = new MemoryIdentities({
    passwordOf: (userId) => this.users.get(userId)?.passwordHash ?? null,
    markEmailVerified: (userId) => {
      const user = this.users.get(userId);
      if (user) user.emailVerified = true;
    },
    removePassword: (userId) => {
      const user = this.users.get(userId);
      if (user) user.passwordHash = null;
    },
    endSessions: (userId) => {
      const ids = [...(this.indexes.get(userId) ?? [])].filter((id) => this.sessions.has(id));
      for (const id of this.indexes.get(userId) ?? []) this.sessions.delete(id);
      this.indexes.delete(userId);
      if (ids.length > 0) this.feed.emit('revoked', ids);
      return ids;
    },
    record: (step, events) => this.record(step, events),
  });

  constructor(options: MemoryStoreOptions = {}) {
    this.audit = new EventList(Math.max(1, Math.floor(options.auditStreamMax ?? 100_000)));
    this.userEventsMax = Math.max(1, Math.floor(options.userEventsMax ?? USER_EVENTS_MAX));
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.feed.emit('health', false);
    this.feed.removeAllListeners();
  }

  // Users

  async createUser(user: UserRecord, origin: EventOrigin): Promise<'created' | 'email_taken'> {
    if (this.emails.has(user.email)) return 'email_taken';
    this.emails.set(user.email, user.id);
    this.users.set(user.id, structuredClone(user));
    this.record({ time: user.createdAt, userId: user.id, origin }, [{ type: 'user.signed_up' }]);
    return 'created';
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const id = this.emails.get(email);
    return id === undefined ? null : this.copyUser(id);
  }

  async getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    return ids.map((id) => this.copyUser(id));
  }

  async deleteUser(userId: string, now: number, origin: EventOrigin): Promise<DeletedUser | null> {
    const user = this.users.get(userId);
    if (!user) return null;
    const live = await this.listSessions(userId, now);
    for (const id of this.indexes.get(userId) ?? []) this.sessions.delete(id);
    this.indexes.delete(userId);
    const ids = live.map((s) => s.id);
    if (ids.length > 0) this.feed.emit('revoked', ids);
    this.record({ time: now, userId, origin }, [
      ...ids.map((id) => ({ type: 'session.revoked' as const, sessionId: id, details: { cause: 'deleted' } })),
      { type: 'user.deleted' },
    ]);
    this.eraseUserOwned(userId);
    if (this.emails.get(user.email) === userId) this.emails.delete(user.email);
    return { email: user.email, revokedSessionIds: ids };
  }

  async issueMailToken(input: IssueMailTokenInput): Promise<boolean> {
    if (!this.users.has(input.userId)) return false;
    this.mailTokens.set(`${input.userId}:${input.kind}`, { hash: input.secretHash, expiresAt: input.now + input.ttlMs, email: input.email });
    if (input.kind === 'reset') this.record({ time: input.now, userId: input.userId, origin: input.origin }, [{ type: 'password.reset_requested' }]);
    return true;
  }

  /** The live token of the kind that the proof matches (not yet spent). */
  private mailToken(proof: MailTokenProof, kind: MailTokenKind): { hash: string; expiresAt: number; email: string } | null {
    const token = this.mailTokens.get(`${proof.userId}:${kind}`);
    if (!token || token.hash !== proof.secretHash || token.expiresAt <= proof.now) return null;
    return token;
  }

  /** Ends every session of the user but `keep`, as one step would: deleted, pushed, recorded. Returns the live ones. */
  private endSessions(userId: string, keep: string | null, now: number, cause: RevokeAudit['cause']) {
    const ids: string[] = [];
    for (const id of [...(this.indexes.get(userId) ?? [])]) {
      if (id === keep) continue;
      const session = this.sessions.get(id);
      if (session) {
        if (!ended(session, now)) ids.push(id);
        this.remove(session);
      } else this.indexes.get(userId)?.delete(id);
    }
    if (ids.length > 0) this.feed.emit('revoked', ids);
    return { ids, events: ids.map((id) => ({ type: 'session.revoked' as const, sessionId: id, details: { cause } })) };
  }

  async resetPassword(proof: MailTokenProof, passwordHash: string): Promise<ChangedUser | null> {
    const token = this.mailToken(proof, 'reset');
    const user = this.users.get(proof.userId);
    if (!token || !user || user.email !== token.email) return null;
    this.mailTokens.delete(`${proof.userId}:reset`);
    const wasVerified = user.emailVerified;
    Object.assign(user, { passwordHash, emailVerified: true });
    const { ids, events } = this.endSessions(user.id, null, proof.now, 'password_reset');
    this.record({ time: proof.now, userId: user.id, origin: proof.origin }, [
      ...events,
      { type: 'password.changed', details: { method: 'reset' } },
      ...(wasVerified ? [] : [{ type: 'email.verified' as const, details: { method: 'reset' } }]),
    ]);
    return { user: structuredClone(user), revokedSessionIds: ids };
  }

  async verifyEmail(proof: MailTokenProof): Promise<UserRecord | null> {
    const token = this.mailToken(proof, 'verify');
    const user = this.users.get(proof.userId);
    if (!token || !user || user.email !== token.email) return null;
    this.mailTokens.delete(`${proof.userId}:verify`);
    user.emailVerified = true;
    this.record({ time: proof.now, userId: user.id, origin: proof.origin }, [{ type: 'email.verified', details: { method: 'link' } }]);
    return structuredClone(user);
  }

  async changeEmail(proof: MailTokenProof): Promise<{ user: UserRecord; previousEmail: string } | 'invalid' | 'taken'> {
    const token = this.mailToken(proof, 'change');
    const user = this.users.get(proof.userId);
    if (!token || !user) return 'invalid';
    const holder = this.emails.get(token.email);
    if (holder !== undefined && holder !== user.id) return 'taken';
    this.mailTokens.delete(`${proof.userId}:change`);
    const previousEmail = user.email;
    if (this.emails.get(previousEmail) === user.id) this.emails.delete(previousEmail);
    this.emails.set(token.email, user.id);
    Object.assign(user, { email: token.email, emailVerified: true });
    this.record({ time: proof.now, userId: user.id, origin: proof.origin }, [{ type: 'email.changed' }]);
    return { user: structuredClone(user), previousEmail };
  }

  async changePassword(userId: string, passwordHash: string, keepSessionId: string | null, now: number, origin: EventOrigin): Promise<ChangedUser | null> {
    const user = this.users.get(userId);
    if (!user) return null;
    user.passwordHash = passwordHash;
    const { ids, events } = this.endSessions(userId, keepSessionId, now, 'all');
    this.record({ time: now, userId, origin }, [...events, { type: 'password.changed', details: { method: 'change' } }]);
    return { user: structuredClone(user), revokedSessionIds: ids };
  }

  async setUserDisabled(userId: string, disabled: boolean, now: number, origin: EventOrigin): Promise<ChangedUser | null> {
    const user = this.users.get(userId);
    if (!user) return null;
    const was = user.disabled;
    user.disabled = disabled;
    const { ids, events } = disabled ? this.endSessions(userId, null, now, 'disabled') : { ids: [], events: [] };
    const change = disabled === was ? [] : [{ type: disabled ? ('user.disabled' as const) : ('user.enabled' as const) }];
    this.record({ time: now, userId, origin }, [...events, ...change]);
    return { user: structuredClone(user), revokedSessionIds: ids };
  }

  async setUserRoles(userId: string, roles: readonly string[], now: number, origin: EventOrigin): Promise<UserRecord | null> {
    const user = this.users.get(userId);
    if (!user) return null;
    user.roles = [...roles];
    this.record({ time: now, userId, origin }, [{ type: 'user.roles_changed', details: { roles: roles.join(' ') } }]);
    return structuredClone(user);
  }

  /** The same order and cursors as the Redis index (`<email>\u0000<id>`, by bytes). */
  async listUsers(query: { first: number; after: string | null; emailPrefix: string | null }): Promise<UserPage> {
    const after = query.after === null ? null : Buffer.from(query.after, 'base64url');
    const prefix = query.emailPrefix ?? '';
    const members = [...this.emails]
      .map(([email, id]) => Buffer.from(`${email}\u0000${id}`))
      .filter((m) => m.subarray(0, Buffer.byteLength(prefix)).toString() === prefix && (!after || Buffer.compare(m, after) > 0))
      .sort(Buffer.compare);
    const page = members.slice(0, query.first);
    const users = page
      .map((m) => this.copyUser(m.subarray(m.indexOf(0) + 1).toString()))
      .filter((u): u is UserRecord => u !== null);
    const last = page.at(-1);
    return { users, endCursor: last ? last.toString('base64url') : null, hasNextPage: members.length > query.first };
  }

  /**
   * Everything kept of the user's own besides the sessions: what `deleteUser` erases (as
   * RedisKeys.userOwnedKeys lists it for Redis). A capability that keeps records of a user
   * (factors, identities) erases them here too.
   */
  private eraseUserOwned(userId: string): void {
    this.users.delete(userId);
    this.userStreams.delete(userId);
    for (const kind of MAIL_TOKEN_KINDS) this.mailTokens.delete(`${userId}:${kind}`);
    this.factors.eraseUser(userId);
    this.identities.eraseUser(userId);
  }

  private copyUser(id: string): UserRecord | null {
    const user = this.users.get(id);
    return user ? structuredClone(user) : null;
  }

  // Sessions

  private live(ref: SessionRef, now: number): StoredSession | null {
    const session = this.sessions.get(ref.sessionId);
    if (!session || session.userId !== ref.userId || ended(session, now)) return null;
    return session;
  }

  private remove(session: SessionRecord): void {
    this.sessions.delete(session.id);
    this.indexes.get(session.userId)?.delete(session.id);
  }

  private sweep(now: number): void {
    if (++this.writes % SWEEP_EVERY !== 0) return;
    for (const session of this.sessions.values()) if (ended(session, now)) this.remove(session);
    for (const [name, counter] of this.counters) if (counter.endsAt <= now) this.counters.delete(name);
  }

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    this.sweep(input.now);
    const absoluteExpiresAt = input.now + input.absoluteTtlMs;
    const session: StoredSession = {
      id: input.sessionId,
      userId: input.userId,
      createdAt: input.now,
      lastRefreshedAt: input.now,
      expiresAt: Math.min(input.now + input.idleTtlMs, absoluteExpiresAt),
      absoluteExpiresAt,
      userAgent: input.userAgent,
      ipAddress: input.ipAddress,
      generation: 0,
      secretHash: input.secretHash,
      previousHash: null,
      rotatedAt: 0,
      sealedSuccessor: null,
      authTime: input.auth.authTime,
      amr: [...input.auth.amr],
      acr: input.auth.acr,
    };
    const index = this.indexes.get(input.userId) ?? new Set<string>();
    const live = [...index].filter(
      (id) => id !== input.sessionId && this.live({ userId: input.userId, sessionId: id }, input.now) !== null,
    );
    const evicted = live.slice(0, Math.max(0, live.length - input.maxSessions + 1));
    for (const id of evicted) this.remove(this.sessions.get(id)!);
    this.sessions.set(session.id, session);
    index.delete(session.id); // a re-created id is the newest, as in Redis
    index.add(session.id);
    this.indexes.set(input.userId, index);
    if (evicted.length > 0) this.feed.emit('revoked', evicted);
    this.record({ time: input.now, userId: input.userId, origin: input.origin }, [
      { type: 'session.created', sessionId: session.id },
      ...evicted.map((id) => ({ type: 'session.revoked' as const, sessionId: id, details: { cause: 'evicted' } })),
    ]);
    return publicSession(session);
  }

  async rotateSession(input: RotateInput): Promise<RotateResult> {
    const session = this.sessions.get(input.sessionId);
    if (!session || session.userId !== input.userId) return { status: 'invalid' };
    if (ended(session, input.now)) {
      this.remove(session);
      return { status: 'expired' };
    }
    if (input.generation === session.generation) {
      if (input.secretHash !== session.secretHash) return { status: 'invalid' };
      Object.assign(session, {
        generation: session.generation + 1,
        previousHash: session.secretHash,
        secretHash: input.nextSecretHash,
        rotatedAt: input.now,
        sealedSuccessor: input.sealedSuccessor,
        lastRefreshedAt: input.now,
        expiresAt: Math.min(input.now + input.idleTtlMs, session.absoluteExpiresAt),
      });
      return { status: 'rotated', session: publicSession(session), user: this.copyUser(session.userId) };
    }
    if (input.generation === session.generation - 1) {
      if (input.secretHash !== session.previousHash) return { status: 'invalid' };
      if (input.graceMs > 0 && input.now - session.rotatedAt <= input.graceMs) {
        return {
          status: 'grace',
          session: publicSession(session),
          sealedSuccessor: session.sealedSuccessor!,
          user: this.copyUser(session.userId),
        };
      }
    }
    if (input.generation < session.generation) {
      this.remove(session);
      this.feed.emit('revoked', [session.id]);
      this.record({ time: input.now, userId: input.userId, origin: input.origin }, [
        {
          type: 'session.reuse_detected',
          sessionId: session.id,
          details: { generation: input.generation, currentGeneration: session.generation },
        },
        { type: 'session.revoked', sessionId: session.id, details: { cause: 'reuse' } },
      ]);
      return { status: 'reused' };
    }
    return { status: 'invalid' };
  }

  async reauthenticateSession(input: ReauthenticateInput): Promise<SessionRecord | null> {
    const session = this.live(input, input.now);
    if (!session) return null;
    Object.assign(session, {
      authTime: input.auth.authTime,
      amr: [...input.auth.amr],
      acr: input.auth.acr,
      secretHash: input.nextSecretHash,
      previousHash: null,
      sealedSuccessor: null,
    });
    return publicSession(session);
  }

  async getSessions(refs: readonly SessionRef[], now: number): Promise<(SessionRecord | null)[]> {
    return refs.map((ref) => {
      const session = this.live(ref, now);
      return session ? publicSession(session) : null;
    });
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const live: SessionRecord[] = [];
    for (const sessionId of this.indexes.get(userId) ?? []) {
      const session = this.sessions.get(sessionId);
      if (session && !ended(session, now)) live.push(publicSession(session));
      else if (session) this.remove(session);
      else this.indexes.get(userId)?.delete(sessionId);
    }
    return live;
  }

  async revokeSession(ref: SessionRef, now: number, audit: RevokeAudit): Promise<boolean> {
    const session = this.sessions.get(ref.sessionId);
    if (!session || session.userId !== ref.userId) return false;
    this.remove(session);
    if (ended(session, now)) return false;
    this.feed.emit('revoked', [session.id]);
    this.recordRevoked(ref.userId, [session.id], now, audit);
    return true;
  }

  private recordRevoked(userId: string, ids: readonly string[], now: number, audit: RevokeAudit): void {
    this.record(
      { time: now, userId, origin: audit.origin },
      ids.map((id) => ({ type: 'session.revoked' as const, sessionId: id, details: { cause: audit.cause } })),
    );
  }

  async revokeSessionWithToken(proof: RefreshProof, now: number, origin: EventOrigin): Promise<boolean> {
    const session = this.live(proof, now);
    if (!session) return false;
    const holder =
      (proof.generation === session.generation && proof.secretHash === session.secretHash) ||
      (proof.generation === session.generation - 1 && proof.secretHash === session.previousHash);
    if (!holder) return false;
    this.remove(session);
    this.feed.emit('revoked', [session.id]);
    this.recordRevoked(proof.userId, [session.id], now, { origin, cause: 'logout' });
    return true;
  }

  async revokeAllSessions(userId: string, now: number, audit: RevokeAudit): Promise<string[]> {
    const live = await this.listSessions(userId, now);
    for (const id of this.indexes.get(userId) ?? []) this.sessions.delete(id);
    this.indexes.delete(userId);
    const ids = live.map((s) => s.id);
    if (ids.length > 0) this.feed.emit('revoked', ids);
    this.recordRevoked(userId, ids, now, audit);
    return ids;
  }

  // Identities (sign-in with other providers)

  findIdentity(provider: string, subject: string): Promise<IdentityRecord | null> {
    return this.identities.findIdentity(provider, subject);
  }
  listIdentities(userId: string): Promise<IdentityRecord[]> {
    return this.identities.listIdentities(userId);
  }
  linkIdentity(input: LinkInput, now: number): Promise<LinkResult> {
    return this.identities.linkIdentity(input, now);
  }
  unlinkIdentity(userId: string, identityId: string, now: number, origin: EventOrigin): Promise<UnlinkResult> {
    return this.identities.unlinkIdentity(userId, identityId, now, origin);
  }
  deleteIdentities(userId: string): Promise<void> {
    return this.identities.deleteIdentities(userId);
  }
  putFlowRecord(kind: FlowRecordKind, keyHash: string, value: string, expiresAt: number, now: number): Promise<void> {
    return this.identities.putFlowRecord(kind, keyHash, value, expiresAt, now);
  }
  takeFlowRecord(kind: FlowRecordKind, keyHash: string, now: number): Promise<string | null> {
    return this.identities.takeFlowRecord(kind, keyHash, now);
  }

  // Security events

  /** The events of one step, named `<step id>-<i>`, in the audit list and the user's own; then the listeners hear of them. */
  private record(
    step: { time: number; userId: string | null; origin: EventOrigin },
    events: readonly { type: SecurityEventType; sessionId?: string; details?: EventDetails }[],
  ): SecurityEvent[] {
    if (events.length === 0) return [];
    const stepId = newEventStepId(step.time);
    const base: Record<string, string> = step.origin.requestId ? { requestId: step.origin.requestId } : {};
    const made = events.map((e, i): SecurityEvent => ({
      id: eventId(stepId, i + 1),
      type: e.type,
      time: step.time,
      userId: step.userId,
      sessionId: e.sessionId ?? null,
      ip: step.origin.ipAddress,
      userAgent: step.origin.userAgent,
      details: { ...e.details, ...base },
    }));
    for (const event of made) {
      const id = this.nextEntryId();
      this.audit.push({ position: { id, source: '' }, event });
      if (event.userId !== null) {
        let own = this.userStreams.get(event.userId);
        if (!own) this.userStreams.set(event.userId, (own = new EventList(this.userEventsMax)));
        own.push({ position: { id, source: '' }, event });
      }
    }
    for (const listener of this.listeners) {
      try {
        listener(made, AUDIT_LIST);
      } catch {
        // A failing listener (the audit log) cannot undo or fail a stored change.
      }
    }
    const live = made.filter((event) => (LIVE_EVENT_TYPES as readonly string[]).includes(event.type));
    if (live.length > 0) {
      for (const listener of this.liveListeners) {
        try {
          listener(live);
        } catch {
          // Likewise.
        }
      }
    }
    return made;
  }

  /** Entry ids as Redis makes them: `<ms>-<seq>`, always increasing. */
  private nextEntryId(): string {
    const ms = Date.now();
    if (ms > this.lastEntryMs) {
      this.lastEntryMs = ms;
      this.lastEntrySeq = 0;
    } else {
      this.lastEntrySeq += 1;
    }
    return `${this.lastEntryMs}-${this.lastEntrySeq}`;
  }

  /** One process: the live events are this store's own steps'. */
  async subscribeLiveEvents(listener: LiveEventListener): Promise<() => void> {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  onEvents(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async appendEvent(input: EventInput): Promise<SecurityEvent> {
    const [event] = this.record({ time: input.time, userId: input.userId, origin: input.origin }, [
      { type: input.type, ...(input.sessionId ? { sessionId: input.sessionId } : {}), details: input.details },
    ]);
    return event!;
  }

  async userEvents(userId: string, page: EventPageRequest): Promise<EventPage> {
    const own = this.userStreams.get(userId);
    return own ? readNewestFirst([own.source()], page) : { events: [], endCursor: null, hasNextPage: false };
  }

  async auditEvents(query: AuditQuery): Promise<EventPage> {
    const { type } = query;
    const filter = type === undefined ? undefined : (event: SecurityEvent) => event.type === type;
    const options = { first: query.first, after: query.after, ...(filter ? { filter } : {}) };
    if (query.userId !== undefined) {
      const own = this.userStreams.get(query.userId);
      return own ? readNewestFirst([own.source()], options) : { events: [], endCursor: null, hasNextPage: false };
    }
    return readNewestFirst([this.audit.source()], options);
  }

  async deliveryStreams(): Promise<string[]> {
    return [AUDIT_LIST];
  }

  /** The consumer group of the Redis store, in memory: the same claims, timed by the caller's clock. */
  async claimDeliveries(stream: string, request: ClaimRequest): Promise<Delivery[]> {
    if (stream !== AUDIT_LIST) return [];
    let group = this.groups.get(request.group);
    if (!group) this.groups.set(request.group, (group = { lastDelivered: '0-0', pending: new Map() }));
    const out: Delivery[] = [];
    for (const [entryId, pending] of group.pending) {
      if (out.length >= request.count) break;
      const entry = this.audit.byId.get(entryId);
      if (!entry) {
        group.pending.delete(entryId); // trimmed away, as XCLAIM drops it
        continue;
      }
      if (request.now - pending.claimedAt < retryDelayMs(pending.attempts, request.backoff, request.jitter)) continue;
      Object.assign(pending, { consumer: request.consumer, claimedAt: request.now, attempts: pending.attempts + 1 });
      out.push({ stream, entryId, attempt: pending.attempts, event: entry.event });
    }
    for (const entry of this.audit.entries) {
      if (out.length >= request.count) break;
      if (compareEntryIds(entry.position.id, group.lastDelivered) <= 0) continue;
      group.lastDelivered = entry.position.id;
      group.pending.set(entry.position.id, { consumer: request.consumer, claimedAt: request.now, attempts: 1 });
      out.push({ stream, entryId: entry.position.id, attempt: 1, event: entry.event });
    }
    return out;
  }

  async acknowledgeDeliveries(group: string, deliveries: readonly Delivery[]): Promise<void> {
    const pending = this.groups.get(group)?.pending;
    for (const d of deliveries) pending?.delete(d.entryId);
  }

  // Revocation feed

  async subscribe(handlers: { onRevoked(ids: string[]): void; onHealth(healthy: boolean): void }): Promise<void> {
    this.feed.on('revoked', handlers.onRevoked);
    this.feed.on('health', handlers.onHealth);
    handlers.onHealth(true);
  }

  // Counters

  async increment(name: string, windowMs: number, now: number, by = 1): Promise<{ count: number; resetInMs: number }> {
    this.sweep(now);
    let counter = this.counters.get(name);
    if (!counter || counter.endsAt <= now) {
      counter = { count: 0, endsAt: now + windowMs };
      this.counters.set(name, counter);
    }
    counter.count = Math.max(0, counter.count + by);
    return { count: counter.count, resetInMs: counter.endsAt - now };
  }

  async peek(name: string, now: number): Promise<{ count: number; resetInMs: number }> {
    const counter = this.counters.get(name);
    if (!counter || counter.endsAt <= now) return { count: 0, resetInMs: 0 };
    return { count: counter.count, resetInMs: counter.endsAt - now };
  }

  async reset(name: string): Promise<void> {
    this.counters.delete(name);
  }
}

function ended(session: SessionRecord, now: number): boolean {
  return now >= session.expiresAt || now >= session.absoluteExpiresAt;
}

function publicSession(s: StoredSession): SessionRecord {
  return {
    id: s.id,
    userId: s.userId,
    createdAt: s.createdAt,
    lastRefreshedAt: s.lastRefreshedAt,
    expiresAt: s.expiresAt,
    absoluteExpiresAt: s.absoluteExpiresAt,
    userAgent: s.userAgent,
    ipAddress: s.ipAddress,
    generation: s.generation,
    authTime: s.authTime,
    amr: [...s.amr],
    acr: s.acr,
  };
}
