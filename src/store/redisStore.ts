import type { Cluster, Redis } from 'ioredis';
import { RedisKeys } from './redisKeys.js';
import { dropConnection, isCommandTimeout } from './redisConnection.js';
import { translateRedisError } from './redisErrors.js';
import {
  type RedisReply,
  SESSION_FIELDS,
  USER_FIELDS,
  sessionFromFields,
  userFromFields,
  userToFields,
} from './redisRecords.js';
import * as scripts from './redisScripts.js';
import { RedisRevocationSubscriber } from './redisRevocationSubscriber.js';
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

export type RedisClient = Redis | Cluster;

/** A script that starts later than this after it was sent writes nothing (below the 1 s command timeout). */
const SCRIPT_DEADLINE_MS = 800;

/** Looked up when an email is unknown, so that path costs what a known email costs. */
const UNKNOWN_USER_ID = 'unknown-user';

export interface RedisStoreOptions {
  client: RedisClient;
  /** A new connection for pub/sub (a subscribed connection can do nothing else). */
  createSubscriber: () => RedisClient;
  keyPrefix: string;
}

type ScriptName =
  | 'tsCreateSession'
  | 'tsRotateSession'
  | 'tsListSessions'
  | 'tsRevokeSession'
  | 'tsRevokeWithToken'
  | 'tsRevokeAll'
  | 'tsCount';
type ScriptCall = (...args: (string | number)[]) => Promise<RedisReply>;

const SCRIPTS: Record<ScriptName, { keys: number; lua: string }> = {
  tsCreateSession: { keys: 2, lua: scripts.CREATE_SESSION },
  tsRotateSession: { keys: 2, lua: scripts.ROTATE_SESSION },
  tsListSessions: { keys: 1, lua: scripts.LIST_SESSIONS },
  tsRevokeSession: { keys: 2, lua: scripts.REVOKE_SESSION },
  tsRevokeWithToken: { keys: 2, lua: scripts.REVOKE_SESSION_WITH_TOKEN },
  tsRevokeAll: { keys: 1, lua: scripts.REVOKE_ALL_SESSIONS },
  tsCount: { keys: 1, lua: scripts.INCREMENT_COUNTER },
};

/** The production store: sessions, users, counters and the revocation feed in Redis. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly keys: RedisKeys;
  private readonly client: RedisClient;
  private readonly subscribers: RedisRevocationSubscriber[] = [];

  constructor(private readonly options: RedisStoreOptions) {
    this.client = options.client;
    this.keys = new RedisKeys(options.keyPrefix);
    for (const [name, { keys, lua }] of Object.entries(SCRIPTS)) {
      this.client.defineCommand(name, { numberOfKeys: keys, lua });
    }
    this.client.on('ready', () => void this.learnClockOffset());
    if (this.client.status === 'ready') void this.learnClockOffset();
  }

  /** Redis's clock minus ours, so deadlines can be given in Redis's clock. */
  private clockOffsetMs = 0;

  private async learnClockOffset(): Promise<void> {
    try {
      const before = Date.now();
      const [seconds, micros] = await this.client.time();
      const after = Date.now();
      this.clockOffsetMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (before + after) / 2;
    } catch {
      // Keep the last offset; the next 'ready' tries again.
    }
  }

  /** When a script must no longer write, in Redis's clock: a little before our command timeout. */
  private deadline(): number {
    return Math.floor(Date.now() + this.clockOffsetMs + SCRIPT_DEADLINE_MS);
  }

  private async run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (isCommandTimeout(error)) dropConnection(this.client);
      throw translateRedisError(error);
    }
  }

  private script(name: ScriptName, ...args: (string | number)[]): Promise<RedisReply> {
    const call = (this.client as unknown as Record<ScriptName, ScriptCall>)[name];
    return this.run(() => call.apply(this.client, [...args, this.deadline()]));
  }

  /** Runs a pipeline and returns its results, failing as a whole if any command failed. */
  private async pipeline(build: (p: ReturnType<RedisClient['pipeline']>) => void): Promise<unknown[]> {
    return this.run(async () => {
      const p = this.client.pipeline();
      build(p);
      const results = (await p.exec()) ?? [];
      return results.map(([error, value]) => {
        if (error) throw error;
        return value;
      });
    });
  }

  async ping(): Promise<void> {
    await this.run(() => this.client.ping());
  }

  async close(): Promise<void> {
    await Promise.all(this.subscribers.map((s) => s.close()));
    await this.client.quit().catch(() => this.client.disconnect());
  }

  // Users

  async createUser(user: UserRecord): Promise<'created' | 'email_taken'> {
    const claimed = await this.run(() => this.client.set(this.keys.email(user.email), user.id, 'NX'));
    if (claimed !== 'OK') return 'email_taken';
    try {
      await this.run(() => this.client.hset(this.keys.user(user.id), userToFields(user)));
    } catch (error) {
      await this.client.del(this.keys.email(user.email)).catch(() => undefined);
      throw error;
    }
    return 'created';
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const id = await this.run(() => this.client.get(this.keys.email(email)));
    // An unknown email costs the same two round trips as a known one.
    const [user] = await this.getUsers([id ?? UNKNOWN_USER_ID]);
    return id === null ? null : (user ?? null);
  }

  async getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.pipeline((p) => {
      for (const id of ids) p.hmget(this.keys.user(id), ...USER_FIELDS);
    });
    return rows.map((row, i) => userFromFields(ids[i]!, row as (string | null)[]));
  }

  // Sessions

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const { userId, sessionId, now } = input;
    const expires = await this.script(
      'tsCreateSession',
      this.keys.session(userId, sessionId),
      this.keys.sessionIndex(userId),
      now,
      input.idleTtlMs,
      input.absoluteTtlMs,
      input.secretHash,
      input.userAgent ?? '',
      input.ipAddress ?? '',
      sessionId,
    );
    return {
      id: sessionId,
      userId,
      createdAt: now,
      lastRefreshedAt: now,
      expiresAt: Number(expires),
      absoluteExpiresAt: now + input.absoluteTtlMs,
      userAgent: input.userAgent,
      ipAddress: input.ipAddress,
      generation: 0,
    };
  }

  async rotateSession(input: RotateInput): Promise<RotateResult> {
    const { userId, sessionId } = input;
    const reply = (await this.script(
      'tsRotateSession',
      this.keys.session(userId, sessionId),
      this.keys.sessionIndex(userId),
      input.now,
      input.generation,
      input.secretHash,
      input.nextSecretHash,
      input.sealedSuccessor,
      input.idleTtlMs,
      input.graceMs,
      sessionId,
      this.keys.revocationChannel(),
    )) as RedisReply[];
    const status = reply[0];
    if (status === 'rotated') return { status, session: sessionFromFields(userId, sessionId, reply.slice(1)) };
    if (status === 'grace') {
      return {
        status,
        session: sessionFromFields(userId, sessionId, reply.slice(1, 8)),
        sealedSuccessor: String(reply[8]),
      };
    }
    if (status === 'reused' || status === 'expired') return { status };
    return { status: 'invalid' };
  }

  async getSessions(refs: readonly SessionRef[], now: number): Promise<(SessionRecord | null)[]> {
    if (refs.length === 0) return [];
    const rows = await this.pipeline((p) => {
      for (const ref of refs) p.hmget(this.keys.session(ref.userId, ref.sessionId), ...SESSION_FIELDS);
    });
    return rows.map((row, i) => {
      const fields = row as (string | null)[];
      if (fields[0] === null) return null;
      const ref = refs[i]!;
      const session = sessionFromFields(ref.userId, ref.sessionId, fields);
      return session.expiresAt > now && session.absoluteExpiresAt > now ? session : null;
    });
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const flat = (await this.script(
      'tsListSessions',
      this.keys.sessionIndex(userId),
      now,
      this.keys.sessionPrefix(userId),
    )) as RedisReply[];
    const sessions: SessionRecord[] = [];
    for (let i = 0; i < flat.length; i += 8) {
      sessions.push(sessionFromFields(userId, String(flat[i]), flat.slice(i + 1, i + 8)));
    }
    return sessions;
  }

  async revokeSession(ref: SessionRef, now: number): Promise<boolean> {
    const revoked = await this.script(
      'tsRevokeSession',
      this.keys.session(ref.userId, ref.sessionId),
      this.keys.sessionIndex(ref.userId),
      now,
      ref.sessionId,
      this.keys.revocationChannel(),
    );
    return revoked === 1;
  }

  async revokeSessionWithToken(proof: RefreshProof, now: number): Promise<boolean> {
    const revoked = await this.script(
      'tsRevokeWithToken',
      this.keys.session(proof.userId, proof.sessionId),
      this.keys.sessionIndex(proof.userId),
      now,
      proof.sessionId,
      proof.generation,
      proof.secretHash,
      this.keys.revocationChannel(),
    );
    return revoked === 1;
  }

  async revokeAllSessions(userId: string, now: number): Promise<string[]> {
    const ids = await this.script(
      'tsRevokeAll',
      this.keys.sessionIndex(userId),
      now,
      this.keys.sessionPrefix(userId),
      this.keys.revocationChannel(),
    );
    return (ids as RedisReply[]).map(String);
  }

  // Revocation feed

  async subscribe(handlers: { onRevoked(ids: string[]): void; onHealth(healthy: boolean): void }): Promise<void> {
    const subscriber = new RedisRevocationSubscriber(
      this.options.createSubscriber(),
      this.keys.revocationChannel(),
      handlers,
    );
    this.subscribers.push(subscriber);
    await subscriber.start();
  }

  // Counters

  async increment(name: string, windowMs: number, now: number, by = 1): Promise<{ count: number; resetInMs: number }> {
    const [count, left] = (await this.script('tsCount', this.keys.counter(name), now, windowMs, by)) as number[];
    return { count: Number(count), resetInMs: Number(left) };
  }

  async peek(name: string, now: number): Promise<{ count: number; resetInMs: number }> {
    const [n, end] = await this.run(() => this.client.hmget(this.keys.counter(name), 'n', 'end'));
    const endsAt = Number(end ?? 0);
    if (endsAt <= now) return { count: 0, resetInMs: 0 };
    return { count: Number(n ?? 0), resetInMs: endsAt - now };
  }

  async reset(name: string): Promise<void> {
    await this.run(() => this.client.del(this.keys.counter(name)));
  }
}
