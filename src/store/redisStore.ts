import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import { RedisKeys } from './redisKeys.js';
import { BOUNDED_REDIS_OPTIONS, dropConnection, isCommandTimeout } from './redisConnection.js';
import { translateRedisError } from './redisErrors.js';
import {
  type RedisReply,
  USER_FIELDS,
  decodeSession,
  packIp,
  packOpaque,
  userFromFields,
  userToFields,
} from './redisRecords.js';
import { packUserAgent } from './userAgentCodec.js';
import type { ArgSpec, RedisScript, ScriptArg, ScriptInput } from './redisScript.js';
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

/** The per-key reads, on a client (a promise) or in a pipeline (queued). */
interface KeyCommands {
  hmget(key: string, ...fields: string[]): unknown;
  getBuffer(key: string): unknown;
}

/** A script that starts later than this after it was sent writes nothing: 200 ms before the caller gives up. */
const SCRIPT_DEADLINE_MS = (BOUNDED_REDIS_OPTIONS.commandTimeout ?? 1_000) - 200;

/** How long a write waits for replicas to confirm it (WAIT), when it must (below the command timeout). */
const REPLICA_ACK_TIMEOUT_MS = 300;

/** Looked up when an email is unknown, so that path costs what a known email costs. */
const UNKNOWN_USER_ID = 'unknown-user';

export interface RedisStoreOptions {
  client: RedisClient;
  /** A new connection for pub/sub (a subscribed connection can do nothing else). */
  createSubscriber: () => RedisClient;
  keyPrefix: string;
  /**
   * Acknowledge a session write (create, rotate, revoke) only once this many replicas have it:
   * each such script is followed, on the same connection to the same node, by `WAIT`; fewer
   * confirmations in time answer StoreUnavailableError, so a failover cannot lose a rotation the
   * client was given. 0 (the default): don't wait.
   */
  minReplicasAck?: number;
  /** How long WAIT may take (default 300 ms; keep it below the command timeout). */
  replicaAckTimeoutMs?: number;
}

type ScriptCall = (...args: ScriptArg[]) => Promise<RedisReply>;

/** The production store: sessions, users, counters and the revocation feed in Redis. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly keys: RedisKeys;
  private readonly client: RedisClient;
  private readonly subscribers: RedisRevocationSubscriber[] = [];
  private readonly isCluster: boolean;
  private readonly minReplicasAck: number;
  private readonly replicaAckTimeoutMs: number;

  constructor(private readonly options: RedisStoreOptions) {
    this.client = options.client;
    this.isCluster = (options.client as { isCluster?: boolean }).isCluster === true;
    this.minReplicasAck = Math.max(0, Math.floor(options.minReplicasAck ?? 0));
    this.replicaAckTimeoutMs = Math.max(1, Math.floor(options.replicaAckTimeoutMs ?? REPLICA_ACK_TIMEOUT_MS));
    this.keys = new RedisKeys(options.keyPrefix);
    for (const { name, numberOfKeys, lua } of scripts.SCRIPTS) this.client.defineCommand(name, { numberOfKeys, lua });
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

  /** Runs a script with its named keys and arguments (and the deadline); binary replies as Buffers. */
  private script<K extends string, A extends ArgSpec>(script: RedisScript<K, A>, input: ScriptInput<K, A>): Promise<RedisReply> {
    const call = (this.client as unknown as Record<string, ScriptCall>)[script.buffers ? `${script.name}Buffer` : script.name]!;
    return this.run(() => call.apply(this.client, script.argv(input, this.deadline())));
  }

  /**
   * A session write that is acknowledged only once `minReplicasAck` replicas have it (plain
   * `script` when that is 0). The script first; once it has answered, a write to a marker key of
   * the same user and WAIT, in one pipeline, so on the connection to the master of the user's
   * slot (an ioredis Cluster sends a pipeline to the node of its first key). It is the connection
   * the script went over: the pipeline is written in the microtasks that follow the script's
   * reply, before any I/O could close that connection or open another.
   * The marker always replicates, so WAIT also covers an answer that wrote nothing now but reports
   * an earlier write, perhaps made over another connection and never confirmed (a retried rotation
   * answered from the grace window, a revoke that finds the session already gone).
   * A script the master refused (NOREPLICAS under `min-replicas-to-write`) waits for nothing, so a
   * master without replicas does not hold the connection for the WAIT timeout on every write.
   */
  private async acknowledged<K extends string, A extends ArgSpec>(
    script: RedisScript<K, A>,
    userId: string,
    input: ScriptInput<K, A>,
  ): Promise<RedisReply> {
    const reply = await this.script(script, input);
    if (this.minReplicasAck === 0) return reply;
    return this.run(async () => {
      const p = this.client.pipeline();
      p.set(this.keys.ackMarker(userId), '1', 'PX', 60_000);
      p.wait(this.minReplicasAck, this.replicaAckTimeoutMs);
      const [marker, wait] = (await p.exec()) ?? [];
      for (const [error] of [marker ?? [null], wait ?? [null]]) {
        // Not confirmed, whatever the reason (NOREPLICAS, UNBLOCKED by a role change …).
        if (error) throw isCommandTimeout(error) ? error : new StoreUnavailableError(error);
      }
      const replicas = Number(wait?.[1]);
      if (!(replicas >= this.minReplicasAck)) {
        throw new StoreUnavailableError(
          new Error(`${replicas} of ${this.minReplicasAck} replicas confirmed the write within ${this.replicaAckTimeoutMs} ms`),
        );
      }
      return reply;
    });
  }

  /**
   * One command per key, in one round trip where it can. A Cluster pipeline must stay on one
   * node, and these keys (of different users) may not: there each goes on its own, all at once.
   */
  private async perKey<T>(keys: readonly string[], send: (target: KeyCommands, key: string) => unknown): Promise<T[]> {
    if (!this.isCluster) {
      return (await this.pipeline((p) => {
        for (const key of keys) send(p, key);
      })) as T[];
    }
    return Promise.all(keys.map((key) => this.run(() => send(this.client, key) as Promise<T>)));
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

  /**
   * The record first (under a new id nobody refers to yet), then the email claim: whatever fails
   * or arrives late, an email never points at a missing record. Both carry the script deadline.
   */
  async createUser(user: UserRecord): Promise<'created' | 'email_taken'> {
    await this.script(scripts.WRITE_USER, { userKey: this.keys.user(user.id), ...userToFields(user) });
    const claimed = await this.script(scripts.CLAIM_EMAIL, { emailKey: this.keys.email(user.email), userId: user.id });
    if (claimed === 1) return 'created';
    await this.client.del(this.keys.user(user.id)).catch(() => undefined);
    return 'email_taken';
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const id = await this.run(() => this.client.get(this.keys.email(email)));
    // An unknown email costs the same two round trips as a known one.
    const [user] = await this.getUsers([id ?? UNKNOWN_USER_ID]);
    return id === null ? null : (user ?? null);
  }

  async getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.perKey<(string | null)[]>(
      ids.map((id) => this.keys.user(id)),
      (target, key) => target.hmget(key, ...USER_FIELDS),
    );
    return rows.map((row, i) => userFromFields(ids[i]!, row));
  }

  // Sessions

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const { userId, sessionId, now } = input;
    if (sessionId.includes(',')) throw new RangeError('a session id may not contain a comma (the index separator)');
    const expires = await this.acknowledged(scripts.CREATE_SESSION, userId, {
      sessionKey: this.keys.session(userId, sessionId),
      userKey: this.keys.user(userId),
      now,
      idleMs: input.idleTtlMs,
      absoluteMs: input.absoluteTtlMs,
      secretHash: packOpaque(input.secretHash),
      userAgent: packUserAgent(input.userAgent),
      ip: packIp(input.ipAddress),
      sessionId,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
      maxSessions: input.maxSessions,
      revocationChannel: this.keys.revocationChannel(),
    });
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
    const reply = (await this.acknowledged(scripts.ROTATE_SESSION, userId, {
      sessionKey: this.keys.session(userId, sessionId),
      userKey: this.keys.user(userId),
      now: input.now,
      generation: input.generation,
      secretHash: packOpaque(input.secretHash),
      nextSecretHash: packOpaque(input.nextSecretHash),
      sealedSuccessor: packOpaque(input.sealedSuccessor),
      idleMs: input.idleTtlMs,
      graceMs: input.graceMs,
      sessionId,
      revocationChannel: this.keys.revocationChannel(),
    })) as Buffer[];
    const status = String(reply[0]);
    if (status === 'rotated' || status === 'grace') {
      const stored = decodeSession(userId, sessionId, reply[1]!);
      const user = userFromFields(userId, reply.slice(2, 2 + USER_FIELDS.length));
      if (status === 'rotated') return { status, session: stored.session, user };
      return { status, session: stored.session, sealedSuccessor: stored.sealedSuccessor!, user };
    }
    if (status === 'reused' || status === 'expired') return { status };
    return { status: 'invalid' };
  }

  async getSessions(refs: readonly SessionRef[], now: number): Promise<(SessionRecord | null)[]> {
    if (refs.length === 0) return [];
    const records = await this.perKey<Buffer | null>(
      refs.map((ref) => this.keys.session(ref.userId, ref.sessionId)),
      (target, key) => target.getBuffer(key),
    );
    return records.map((record, i) => {
      if (record === null) return null;
      const ref = refs[i]!;
      const { session } = decodeSession(ref.userId, ref.sessionId, record);
      return session.expiresAt > now && session.absoluteExpiresAt > now ? session : null;
    });
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const flat = (await this.script(scripts.LIST_SESSIONS, {
      userKey: this.keys.user(userId),
      now,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
    })) as Buffer[];
    const sessions: SessionRecord[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      sessions.push(decodeSession(userId, flat[i]!.toString(), flat[i + 1]!).session);
    }
    return sessions;
  }

  async revokeSession(ref: SessionRef, now: number): Promise<boolean> {
    const revoked = await this.acknowledged(scripts.REVOKE_SESSION, ref.userId, {
      sessionKey: this.keys.session(ref.userId, ref.sessionId),
      userKey: this.keys.user(ref.userId),
      now,
      sessionId: ref.sessionId,
      revocationChannel: this.keys.revocationChannel(),
    });
    return revoked === 1;
  }

  async revokeSessionWithToken(proof: RefreshProof, now: number): Promise<boolean> {
    const revoked = await this.acknowledged(scripts.REVOKE_SESSION_WITH_TOKEN, proof.userId, {
      sessionKey: this.keys.session(proof.userId, proof.sessionId),
      userKey: this.keys.user(proof.userId),
      now,
      sessionId: proof.sessionId,
      generation: proof.generation,
      secretHash: packOpaque(proof.secretHash),
      revocationChannel: this.keys.revocationChannel(),
    });
    return revoked === 1;
  }

  async revokeAllSessions(userId: string, now: number): Promise<string[]> {
    const ids = await this.acknowledged(scripts.REVOKE_ALL_SESSIONS, userId, {
      userKey: this.keys.user(userId),
      now,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
      revocationChannel: this.keys.revocationChannel(),
    });
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
    const [count, left] = (await this.script(scripts.INCREMENT_COUNTER, {
      counterKey: this.keys.counter(name),
      now,
      windowMs,
      by,
    })) as number[];
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
