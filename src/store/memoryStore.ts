import { EventEmitter } from 'node:events';
import type {
  CreateSessionInput,
  RefreshProof,
  RotateInput,
  RotateResult,
  SessionRecord,
  SessionRef,
  Store,
  UserRecord,
} from './types.js';

interface StoredSession extends SessionRecord {
  secretHash: string;
  previousHash: string | null;
  rotatedAt: number;
  sealedSuccessor: string | null;
}

/** Sweep ended records every this many writes, so an idle process does not keep them forever. */
const SWEEP_EVERY = 500;

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
  private readonly feed = new EventEmitter();
  private writes = 0;

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.feed.emit('health', false);
    this.feed.removeAllListeners();
  }

  // Users

  async createUser(user: UserRecord): Promise<'created' | 'email_taken'> {
    if (this.emails.has(user.email)) return 'email_taken';
    this.emails.set(user.email, user.id);
    this.users.set(user.id, structuredClone(user));
    return 'created';
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const id = this.emails.get(email);
    return id === undefined ? null : this.copyUser(id);
  }

  async getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    return ids.map((id) => this.copyUser(id));
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
      return { status: 'reused' };
    }
    return { status: 'invalid' };
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

  async revokeSession(ref: SessionRef, now: number): Promise<boolean> {
    const session = this.sessions.get(ref.sessionId);
    if (!session || session.userId !== ref.userId) return false;
    this.remove(session);
    if (ended(session, now)) return false;
    this.feed.emit('revoked', [session.id]);
    return true;
  }

  async revokeSessionWithToken(proof: RefreshProof, now: number): Promise<boolean> {
    const session = this.live(proof, now);
    if (!session) return false;
    const holder =
      (proof.generation === session.generation && proof.secretHash === session.secretHash) ||
      (proof.generation === session.generation - 1 && proof.secretHash === session.previousHash);
    if (!holder) return false;
    this.remove(session);
    this.feed.emit('revoked', [session.id]);
    return true;
  }

  async revokeAllSessions(userId: string, now: number): Promise<string[]> {
    const live = await this.listSessions(userId, now);
    for (const id of this.indexes.get(userId) ?? []) this.sessions.delete(id);
    this.indexes.delete(userId);
    const ids = live.map((s) => s.id);
    if (ids.length > 0) this.feed.emit('revoked', ids);
    return ids;
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
  };
}
